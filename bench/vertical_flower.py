"""Vertical LR through Flower: CKKS vs the plaintext protocol, and partial-inference latency.

The credit-hetero federation (``examples/credit-hetero/federation.toml``: FATE's vertical
credit split, guest 13 features + labels, host 10 features, 25 % holdout) runs end to end on
Flower's simulation runtime twice, back to back: ``privacy = "he"`` (CKKS residuals, masked
products) and ``privacy = "none"`` (the same protocol, plaintext). Both pay the same PSI and
the same message relay through the coordinator, so the ratio of their seconds per epoch is
what CKKS costs the protocol (FATE's Paillier costs about 7.5x its plaintext; target <= 3x).
The first epoch is left out (warm-up).

Then the parts the ``he`` run filed at each party are loaded (ONNX Runtime sessions, as a
server keeps them) and one subject is scored through the guest's part, the host's part and the
coordinator's combiner in this process, many times: p50 and p99 latency (the HTTP path is
measured with the scoring API), and a batch of 10,000 subjects for throughput.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import ROOT, fmt, progress, run_federation, table, verdict

EXAMPLE = ROOT / "examples" / "credit-hetero" / "federation.toml"
EPOCHS, QUICK_EPOCHS = 4, 1
TARGET_RATIO = 3.0
FATE_RATIO = 7.5
LATENCY_CALLS, QUICK_LATENCY_CALLS = 2000, 200
BATCH_ROWS = 10_000


def _federation(work: Path, *, privacy: str, epochs: int) -> Path:
    """The example federation with ``privacy`` and ``epochs``, its data paths made absolute."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(
        r'^name = "credit-hetero"', f'name = "bench-vertical-{privacy}"', text, flags=re.M
    )
    text = re.sub(r'^privacy = "he"', f'privacy = "{privacy}"', text, flags=re.M)
    text = re.sub(r"^rounds = \d+", f"rounds = {epochs}", text, flags=re.M)
    text = re.sub(
        r'^file = "([^"]+)"',
        lambda m: f'file = "{(EXAMPLE.parent / m.group(1)).resolve().as_posix()}"',
        text,
        flags=re.M,
    )
    path = work / privacy / "federation.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _latency(toml: Path, *, calls: int) -> dict[str, Any]:
    """Single-subject and batch latency through both parts and the combiner (in-process)."""
    from models.federation import load_federation
    from models.layout import registry_dir
    from models.registry import ModelRegistry
    from models.tabular import load_table
    from models.vertical_parts import Combiner, PartScorer
    from participants.vertical_state import part_dir

    spec = load_federation(toml)
    registered = ModelRegistry(registry_dir(spec)).latest(spec.name)
    refs = registered.card.architecture["parts"]
    scorers = {r["party"]: PartScorer(part_dir(spec.name, r["party"], r["export_id"]) / "part.onnx")
               for r in refs}  # fmt: skip
    combiner = Combiner(registered.onnx_path)
    tables = {}
    for participant in spec.participants:
        assert participant.schema is not None
        schema = participant.schema
        tables[participant.name] = load_table(
            participant.file, schema, require_label=schema.label is not None
        ).features
    rows = min(len(t) for t in tables.values())
    rng = np.random.default_rng(0)
    picks = rng.integers(0, rows, size=calls)
    seconds = []
    for row in picks:
        started = time.perf_counter()
        combiner.combine({party: scorers[party].score(tables[party][row]) for party in scorers})
        seconds.append(time.perf_counter() - started)
    batch = min(BATCH_ROWS, rows)
    started = time.perf_counter()
    combiner.combine({party: scorers[party].score(tables[party][:batch]) for party in scorers})
    batch_s = time.perf_counter() - started
    ms = sorted(s * 1000 for s in seconds)
    return {
        "calls": calls,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "batch_rows": batch,
        "batch_s": batch_s,
        "parts": [r["party"] for r in refs],
    }


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    runs = {}
    for privacy in ("he", "none"):
        toml = _federation(work, privacy=privacy, epochs=epochs)
        runs[privacy] = run_federation(toml, label=f"vertical_flower {privacy}")
    he, plain = runs["he"], runs["none"]
    value = he.steady_round_s() / max(plain.steady_round_s(), 1e-9)
    progress(f"vertical_flower: he/none per epoch = {value:.2f}x")
    latency = _latency(_federation(work, privacy="he", epochs=epochs),
                       calls=QUICK_LATENCY_CALLS if quick else LATENCY_CALLS)  # fmt: skip
    progress(
        f"vertical_flower: one subject through {len(latency['parts'])} parts + combiner: "
        f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms"
    )
    return {
        "epochs": epochs,
        "he": {"auc": he.auc, "s_per_epoch": he.steady_round_s(), "wall_s": he.wall_s},
        "none": {"auc": plain.auc, "s_per_epoch": plain.steady_round_s(), "wall_s": plain.wall_s},
        "latency": latency,
        "target": {"ratio": value, "limit": TARGET_RATIO, "pass": value <= TARGET_RATIO},
    }


def markdown(result: dict[str, Any]) -> str:
    t, lat = result["target"], result["latency"]
    rows = [
        ["`he` (CKKS residuals, masked products)", fmt(result["he"]["auc"]),
         f"{result['he']['s_per_epoch']:.2f}", f"{result['he']['wall_s']:.0f}"],
        ["`none` (same protocol, plaintext)", fmt(result["none"]["auc"]),
         f"{result['none']['s_per_epoch']:.2f}", f"{result['none']['wall_s']:.0f}"],
    ]  # fmt: skip
    return "\n".join(
        [
            table(
                [
                    "privacy",
                    "holdout AUC",
                    "s / epoch (median, epoch 1 left out)",
                    "wall s (PSI included)",
                ],
                rows,
            ),
            "",
            f"CKKS costs **{t['ratio']:.2f}x** the plaintext protocol through Flower "
            f"({verdict(t['pass'])}, target <= {t['limit']:.0f}x; FATE's Paillier about "
            f"{FATE_RATIO}x its plaintext), {result['epochs']} epochs of 22 batches each.",
            "",
            f"Partial inference, in-process, ONNX Runtime sessions loaded once: one subject "
            f"through the parts of {', '.join(lat['parts'])} and the combiner "
            f"p50 **{lat['p50_ms']:.2f} ms**, p99 **{lat['p99_ms']:.2f} ms** over "
            f"{lat['calls']:,} calls; a batch of {lat['batch_rows']:,} subjects "
            f"{lat['batch_s'] * 1000:.0f} ms. The HTTP path (a part on each party's node) is "
            "measured with the scoring API.",
        ]
    )
