"""Lending decisions: `fedrisk decide run` over 100,000 applicants, and the ledger's replay.

A root laid out as `fedrisk decide --root` reads it (a registered horizontal `demo-iot`
logistic model under ROOT/runs, the SQLite consent store under ROOT/serving, the evidence
ledger beside the registry) and the IoT policy shipped with the product
(`coordinator/decisions/default_policies/iot.toml`, which `fedrisk decide init` installs).
100,000 applicants: 30 % existing customers (`current_limit`, `previous_score`), the rest
new (`requested_amount`), with the model's three edge indicators; 90 % of them granted
`credit_scoring` consent (loaded through the store's `append` in batches, then
`reconcile()` puts the evidence in the ledger), the grants of 2 % of all withdrawn.
`decide_file`, the function `fedrisk decide run` calls, decides the file in this process
twice on the same root (the ledger holds 100,000, then 200,000 decisions), with the
seconds of each of its stages; `replay_ledger` then decides every recorded decision again
from its record, and the part fails unless all of them come out exactly as recorded. The
CLI runs the same file once, in its own process, on a copy of the root as it was before
the first run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .common import ROOT, BenchError, bench_grant, fresh_dir, progress, ratio, table, verdict

SEED = 23
APPLICANTS, QUICK_APPLICANTS = 100_000, 2_000
EXISTING_SHARE = 0.3
GRANTED_SHARE = 0.9
#: Of all subjects: their grant is recorded, then withdrawn.
WITHDRAWN_SHARE = 0.02
LOAD_BATCH = 50_000
INSTITUTION = "demo-bank"
MODEL = "demo-iot"
ID = "subject_id"
FEATURES = ("receivable_overdue_days", "mes_erp_mismatch", "order_growth")
STAGES = ("read", "consent", "score", "decide", "ledger", "write")
OUTCOMES = ("approve", "refer", "decline", "increase", "keep")
#: Every decision in the ledger must replay exactly.
REPRODUCED_TARGET = 1.0


# --- the root --------------------------------------------------------------------------


def _policy() -> Path:
    """The shipped policy of the IoT model."""
    from coordinator.decisions.policy import DEFAULT_POLICIES

    return Path(DEFAULT_POLICIES) / "iot.toml"


def _settings(root: Path) -> Any:
    from coordinator.serving.settings import ServeSettings

    return ServeSettings.for_root(root)


def register_model(root: Path, *, published: datetime | None = None) -> Any:
    """A registry under ``root/runs`` with one logistic ``demo-iot`` version (a real ONNX
    export, published at ``published``, default now); the registered version. The tests
    build their roots with it too (tests/support/decisions.py)."""
    import numpy as np

    from models.nets import build_network
    from models.parameters import set_flat
    from models.registry import ModelRegistry
    from models.schema import FeatureSpec, TabularSchema

    schema = TabularSchema(
        id=ID,
        label="default_12m",
        features=(
            FeatureSpec(name="receivable_overdue_days", type="float", min=0.0, max=3650.0),
            FeatureSpec(name="mes_erp_mismatch", type="float", min=0.0, max=1.0),
            FeatureSpec(name="order_growth", type="float", min=-1.0, max=10.0),
        ),
    )
    net = build_network("logistic", n_features=len(FEATURES), seed=0)
    set_flat(net, np.array([0.02, 4.0, -3.0, -4.0]))
    when = published or datetime.now(UTC)
    return ModelRegistry(root / "runs" / "registry", clock=lambda: when).register(
        model=net,
        name=MODEL,
        spec_name="iot_risk",
        schema=schema,
        n_features=len(FEATURES),
        mode="horizontal",
        participants={"factory-1": 1_000, "factory-2": 1_000},
        rounds=1,
        strategy="FedAvg",
        privacy_mode="none",
        data_categories={f"factory-{k}": ["iot.erp", "iot.production"] for k in (1, 2)},
    )


def write_applications(path: Path, *, rows: int, seed: int) -> Path:
    """``rows`` applications: new applicants with an ask, existing customers with a line
    and the score it was set at, and the model's features for all."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    existing = rng.random(rows) < EXISTING_SHARE
    frame = pd.DataFrame(
        {
            ID: [f"F{k:07d}" for k in range(rows)],
            "receivable_overdue_days": rng.gamma(2.0, 20.0, rows).round(1),
            "mes_erp_mismatch": rng.beta(1.2, 60.0, rows).round(4),
            "order_growth": rng.normal(0.05, 0.2, rows).clip(-1, 10).round(4),
            "requested_amount": np.where(existing, np.nan, rng.integers(1, 40, rows) * 50_000.0),
            "current_limit": np.where(existing, rng.integers(2, 40, rows) * 50_000.0, np.nan),
            "previous_score": np.where(existing, rng.uniform(0.0, 0.2, rows).round(4), np.nan),
        }
    )
    frame.to_csv(path, index=False)
    return path


def _grant_consent(
    root: Path, ids: list[str], categories: frozenset[str], *, seed: int
) -> tuple[set[str], dict[str, Any]]:
    """Grant ``credit_scoring`` to ``GRANTED_SHARE`` of ``ids`` and withdraw the grants of
    ``WITHDRAWN_SHARE`` of all (store, then the ledger's evidence); the subjects whose
    consent holds, and the figures of the load."""
    import random

    from consent.grants import GrantEvent
    from coordinator.serving.service import consent_registry

    rng = random.Random(seed)
    now = datetime.now(UTC)
    granted = [s for s in ids if rng.random() < GRANTED_SHARE]
    withdrawn = set(rng.sample(granted, round(WITHDRAWN_SHARE * len(ids))))
    events: list[Any] = []
    for n, subject in enumerate(granted):
        grant = bench_grant(
            grant_id=f"bench-{n}",
            subject_id=subject,
            institution=INSTITUTION,
            categories=categories,
            now=now,
        )
        events.append(GrantEvent.granted(grant, at=now - timedelta(days=30)))
        if subject in withdrawn:
            events.append(GrantEvent.withdrawn(grant.grant_id, at=now - timedelta(days=1)))
    progress(f"decisions: recording {len(events):,} consent events (store, then ledger)")
    with consent_registry(_settings(root)) as consent:
        started = time.perf_counter()
        for start in range(0, len(events), LOAD_BATCH):
            consent.store.append(events[start : start + LOAD_BATCH])
        store_s = time.perf_counter() - started
        started = time.perf_counter()
        consent.reconcile()
        reconcile_s = time.perf_counter() - started
    load = {
        "events": len(events),
        "granted": len(granted),
        "withdrawn": len(withdrawn),
        "store_s": store_s,
        "reconcile_s": reconcile_s,
    }
    return set(granted) - withdrawn, load


# --- runs ------------------------------------------------------------------------------


def _decide(root: Path, applications: Path, output: Path, label: str) -> dict[str, Any]:
    """``decide_file`` in this process (as ``fedrisk decide run`` calls it): its figures."""
    from coordinator.decisions import decide_file, load_policy
    from coordinator.decisions.records import DECISION_KIND
    from coordinator.serving.service import consent_registry
    from models.registry import ModelRegistry

    settings = _settings(root)
    policy = load_policy(_policy())
    started = time.perf_counter()
    with consent_registry(settings) as consent:
        opened_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = decide_file(
            policy=policy,
            registry=ModelRegistry(settings.registry),
            consent=consent,
            applications=applications,
            output=output,
            institution=INSTITUTION,
            app="bench",
        )
        wall = time.perf_counter() - started
        entries = consent.ledger.size
        recorded = consent.ledger.count_of_kind(DECISION_KIND)
    stages = {name: float(summary.seconds.get(name, 0.0)) for name in STAGES}
    out = {
        "label": label,
        "rows": summary.rows,
        "wall_s": wall,
        "open_s": opened_s,
        "stages_s": stages,
        "stages_total_s": sum(summary.seconds.values()),
        "decisions_per_s": summary.rows / wall,
        "outcomes": dict(summary.outcomes),
        "refused_consent": summary.refused_consent,
        "ledger_entries_after": entries,
        "ledger_decisions_after": recorded,
    }
    progress(
        f"decisions: {label}: {summary.rows:,} decisions in {wall:.1f} s "
        f"({out['decisions_per_s']:,.0f}/s); "
        + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
    )
    return out


def _check_output(output: Path, consented: set[str]) -> dict[str, Any]:
    """What the output file says of consent: approvals and increases without it (must be
    none), and rows the model scored without it (must be none)."""
    import pandas as pd

    frame = pd.read_csv(output, dtype={ID: str})
    without = ~frame[ID].isin(consented)
    granted_anyway = frame["outcome"].isin(("approve", "increase")) & without
    scored_anyway = frame["score"].notna() & without
    return {
        "rows": len(frame),
        "without_consent": int(without.sum()),
        "approved_without_consent": int(granted_anyway.sum()),
        "scored_without_consent": int(scored_anyway.sum()),
        "referred_without_consent": int(((frame["outcome"] == "refer") & without).sum()),
    }


def _replay(root: Path) -> dict[str, Any]:
    """``replay_ledger`` over the whole ledger, read-only (as ``fedrisk decide replay``)."""
    from consent.ledger.log import EvidenceLog
    from coordinator.decisions import replay_ledger

    folder = _settings(root).ledger_folder
    with EvidenceLog.in_folder(folder, read_only=True) as ledger:
        entries = ledger.size
        started = time.perf_counter()
        report = replay_ledger(ledger)
        seconds = time.perf_counter() - started
    out = {
        "ledger_entries": entries,
        "decisions": report.decisions,
        "reproduced": report.reproduced,
        "share": report.share,
        "policies": report.policies,
        "seconds": seconds,
        "decisions_per_s": ratio(report.decisions, seconds),
        "mismatches": [f"{m.evidence_id}: {m.problem}" for m in report.mismatches],
    }
    progress(
        f"decisions: replayed {report.decisions:,} decisions in {seconds:.1f} s, "
        f"{report.reproduced:,} reproduced ({report.share:.4%})"
    )
    return out


_MAIN = "import sys, fedrisk; sys.argv[0] = 'fedrisk'; fedrisk.main()"


def _cli(root: Path, applications: Path, output: Path) -> dict[str, Any]:
    """``fedrisk decide run`` once, in its own process: wall time from start to exit."""
    script = Path(sys.executable).with_name("fedrisk")
    fedrisk = [str(script)] if script.exists() else [sys.executable, "-c", _MAIN]
    command = [*fedrisk, "decide", "run", str(_policy()), "--applications", str(applications),
                "--output", str(output), "--root", str(root), "--app", "bench-cli"]  # fmt: skip
    progress("decisions: `fedrisk decide run` in its own process")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"fedrisk decide run exited {done.returncode}: {done.stderr[-1000:]}")
    # Its summary line: "N decisions with MODEL VERSION in S s (R/s); ..." (S: the stages).
    said = re.search(r"decisions\s+with\s+.*?\s+in\s+([0-9.]+)\s+s\s+\(", done.stderr, re.S)
    stages = float(said.group(1)) if said else None
    started = time.perf_counter()  # start-up alone: imports, no work
    subprocess.run([*fedrisk, "decide", "--help"], capture_output=True, timeout=600, check=True)
    startup = time.perf_counter() - started
    progress(f"decisions: the CLI took {wall:.1f} s (start-up alone {startup:.1f} s)")
    return {
        "wall_s": wall,
        "startup_s": startup,
        "stages_s": stages,
        "command": "fedrisk decide run",
    }


# --- the part --------------------------------------------------------------------------


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    import pandas as pd

    from coordinator.serving.catalog import consent_categories

    work = fresh_dir(work)
    rows = QUICK_APPLICANTS if quick else APPLICANTS
    root = work / "root"
    registered = register_model(root)
    categories = consent_categories(registered.card)
    progress(f"decisions: {rows:,} applications, {MODEL} {registered.version}")
    applications = write_applications(work / "applications.csv", rows=rows, seed=SEED)
    ids = pd.read_csv(applications, dtype={ID: str}, usecols=[ID])[ID].tolist()
    consented, load = _grant_consent(root, ids, categories, seed=SEED)
    # The CLI runs on the root as it is now, before any decision (a copy).
    cli_root = work / "cli-root"
    shutil.copytree(root, cli_root)

    first = _decide(root, applications, work / "decisions-1.csv", "first run")
    second = _decide(root, applications, work / "decisions-2.csv", "second run")
    checks = _check_output(work / "decisions-1.csv", consented)
    same_outcomes = first["outcomes"] == second["outcomes"]
    replay = _replay(root)
    cli = _cli(cli_root, applications, work / "decisions-cli.csv")
    shutil.rmtree(cli_root, ignore_errors=True)

    result = {
        "applicants": rows,
        "existing_share": EXISTING_SHARE,
        "model": f"{MODEL} {registered.version}",
        "policy": str(_policy().relative_to(ROOT)),
        "categories": sorted(categories),
        "consent": {**load, "consented": len(consented)},
        "runs": [first, second],
        "same_outcomes": same_outcomes,
        "checks": checks,
        "replay": replay,
        "cli": {
            **cli,
            "in_process_wall_s": first["wall_s"],
            "ratio": ratio(cli["wall_s"], first["wall_s"]),
        },
        "target": {
            "share": replay["share"],
            "required": REPRODUCED_TARGET,
            "pass": replay["share"] >= REPRODUCED_TARGET,
        },
    }
    problems = []
    if replay["reproduced"] != replay["decisions"] or replay["decisions"] != 2 * rows:
        problems.append(
            f"{replay['reproduced']:,} of {replay['decisions']:,} decisions reproduced "
            f"(expected {2 * rows:,}, all): {replay['mismatches'][:3]}"
        )
    if checks["approved_without_consent"] or checks["scored_without_consent"]:
        problems.append(
            f"{checks['approved_without_consent']} approved and "
            f"{checks['scored_without_consent']} scored without consent"
        )
    if first["refused_consent"] != len(ids) - len(consented):
        problems.append(
            f"{first['refused_consent']:,} refused for consent, expected "
            f"{len(ids) - len(consented):,}"
        )
    if problems:
        raise BenchError("decisions: " + "; ".join(problems))
    return result


def _share(part: float, whole: float) -> str:
    return f"{100 * ratio(part, whole):.1f} %"


def markdown(result: dict[str, Any]) -> str:
    first, second = result["runs"]
    rows = []
    for stage in STAGES:
        a, b = first["stages_s"][stage], second["stages_s"][stage]
        rows.append(
            [
                f"`{stage}`",
                f"{a:.2f}",
                _share(a, first["wall_s"]),
                f"{b:.2f}",
                _share(b, second["wall_s"]),
                f"{ratio(b, a):.2f}x",
            ]
        )
    rows.append(
        [
            "**`decide_file`, wall**",
            f"**{first['wall_s']:.2f}**",
            "100 %",
            f"**{second['wall_s']:.2f}**",
            "100 %",
            f"**{ratio(second['wall_s'], first['wall_s']):.2f}x**",
        ]
    )
    rows.append(
        [
            "decisions / s",
            f"{first['decisions_per_s']:,.0f}",
            "",
            f"{second['decisions_per_s']:,.0f}",
            "",
            f"{ratio(second['decisions_per_s'], first['decisions_per_s']):.2f}x",
        ]
    )
    header = [
        "stage",
        f"first run, s (ledger: 0 → {first['ledger_decisions_after']:,} decisions)",
        "share of wall",
        f"second run, s ({first['ledger_decisions_after']:,} → "
        f"{second['ledger_decisions_after']:,})",
        "share of wall",
        "second / first",
    ]
    consent, checks, replay, cli = (
        result["consent"], result["checks"], result["replay"], result["cli"]
    )  # fmt: skip
    outcomes = ", ".join(f"{k} {first['outcomes'].get(k, 0):,}" for k in OUTCOMES)
    target = result["target"]
    reproduced = (
        f"{replay['reproduced']:,} of {replay['decisions']:,} decisions reproduced exactly "
        f"({100 * replay['share']:.2f} %, required 100 %: {verdict(target['pass'])})"
    )
    return "\n".join(
        [
            f"`decide_file` over {result['applicants']:,} applicants ({result['model']}, "
            f"`{result['policy']}`), twice on the same root:",
            "",
            table(header, rows),
            "",
            f"Outcomes (each run): {outcomes}"
            + ("" if result["same_outcomes"] else " (**the second run's differ**)")
            + f". {checks['without_consent']:,} applicants had no consent in force "
            f"({result['applicants'] - consent['granted']:,} never granted, "
            f"{consent['withdrawn']:,} withdrawn): all {checks['referred_without_consent']:,} "
            f"referred, {checks['scored_without_consent']} of them scored, "
            f"{checks['approved_without_consent']} approved or raised. Opening the consent "
            f"registry (reconcile check included) took {first['open_s']:.2f} s before each "
            "run, outside the table.",
            "",
            f"**Replay** (`replay_ledger`, read-only, over the whole ledger of "
            f"{replay['ledger_entries']:,} entries): {reproduced} under "
            f"{replay['policies']} polic{'y' if replay['policies'] == 1 else 'ies'}, "
            f"in {replay['seconds']:.1f} s "
            f"({replay['decisions_per_s']:,.0f} decisions / s, "
            f"{ratio(replay['decisions_per_s'], first['decisions_per_s']):.1f}x the first "
            "run's decision rate).",
            "",
            f"**CLI** (`{cli['command']}` in its own process, on a copy of the root before "
            f"the first run): {cli['wall_s']:.1f} s from start to exit, "
            f"{cli['ratio']:.2f}x the in-process `decide_file` "
            f"({cli['in_process_wall_s']:.1f} s); its start-up alone (`fedrisk decide --help`) "
            f"takes {cli['startup_s']:.1f} s"
            + (
                ""
                if cli.get("stages_s") is None
                else f", and the stages it reports sum to {cli['stages_s']:.1f} s "
                f"({ratio(cli['stages_s'], cli['in_process_wall_s']):.2f}x in process)"
            )
            + ". Consent set up beforehand: "
            f"{consent['events']:,} events through the store's `append` in "
            f"{consent['store_s']:.1f} s, their evidence by `reconcile()` in "
            f"{consent['reconcile_s']:.1f} s.",
        ]
    )
