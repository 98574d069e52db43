"""What CKKS aggregation costs: wall time per round of ``he`` vs ``none`` at 10 participants.

The 24 000 credit rows are shuffled and split into ten participants of 2 400 rows. For
models of about 1k, 10k and 100k parameters (an MLP with one hidden layer of 40, 400 and
4 000 units on the 23 features) a ``none`` and an ``he`` federation run back to back in
this process on Flower's simulation runtime; the figure is the median of the rounds'
``duration_s`` with round 1 left out (warm-up). The order of the pair alternates from one
size to the next, and at 100k five pairs run (none he, he none, none he, ...) and the
figure is the median of the five pairs' ratios, so that drifting machine load does not
favour one mode.

A micro-benchmark of the primitives in ``privacy/he`` (key loading, encryption, the
coordinator's per-update check, the sum of ten updates, decryption, Flower message
encoding) explains where the extra time goes; it runs under the key set the federations
used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    CREDIT_PARTS,
    FederationRun,
    FedSettings,
    credit_files,
    csv_columns,
    fmt,
    fresh_dir,
    progress,
    ratio,
    run_federation,
    table,
    time_call,
    verdict,
    write_federation,
)

N_PARTICIPANTS = 10
#: hidden layer widths -> parameters on 23 features: 40 -> 1 001, 400 -> 10 001, 4000 -> 100 001
SIZES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("1k", (40,)),
    ("10k", (400,)),
    ("100k", (4000,)),
)
#: Product defaults for local training (federation file defaults).
#: Product default batch size and local epochs; learning rate 0.01 because at 0.05 the
#: 100k-parameter MLP trains chaotically (AUC jumps by 0.03 between rounds), so float32
#: rounding differences between plain and CKKS aggregation grow into different models.
SETTINGS = FedSettings(rounds=8, local_epochs=1, batch_size=64, learning_rate=0.01)
QUICK_SETTINGS = FedSettings(rounds=3, local_epochs=1, batch_size=64, learning_rate=0.01)
TARGET_RATIO_100K = 1.5
TARGET_SIZE = "100k"
#: none/he pairs run at the target size (the figure is the median of the pairs' ratios).
PAIRS_AT_TARGET = 5
NVFLARE_RATIO = "2.5-3x"


def _split(files: dict[str, Path], out: Path, *, seed: int = 0) -> dict[str, Path]:
    """Shuffle the pooled credit rows and write them as ``N_PARTICIPANTS`` equal files."""
    import pandas as pd

    pooled = pd.concat([pd.read_csv(files[name]) for name in CREDIT_PARTS], ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(pooled))
    out.mkdir(parents=True, exist_ok=True)
    parts = {}
    for index, rows in enumerate(np.array_split(order, N_PARTICIPANTS), start=1):
        path = out / f"p{index:02d}.csv"
        pooled.iloc[rows].to_csv(path, index=False)
        parts[f"p{index:02d}"] = path
    return parts


def _size_result(
    tag: str, hidden: tuple[int, ...], n_params: int, pairs: list[dict[str, FederationRun]]
) -> dict[str, Any]:
    """One model size: per-pair ratios of median round durations, and their median."""
    per_pair = [
        {
            "none_round_s": p["none"].steady_round_s(),
            "he_round_s": p["he"].steady_round_s(),
            "ratio": ratio(p["he"].steady_round_s(), p["none"].steady_round_s()),
            "delta_s": p["he"].steady_round_s() - p["none"].steady_round_s(),
            "order": list(p),
        }
        for p in pairs
    ]
    runs = {mode: [p[mode] for p in pairs] for mode in ("none", "he")}
    return {
        "size": tag,
        "hidden": list(hidden),
        "parameters": n_params,
        "pairs": per_pair,
        "none": [r.to_dict() for r in runs["none"]],
        "he": [r.to_dict() for r in runs["he"]],
        "none_round_s": float(np.median([x["none_round_s"] for x in per_pair])),
        "he_round_s": float(np.median([x["he_round_s"] for x in per_pair])),
        "ratio": float(np.median([x["ratio"] for x in per_pair])),
        "delta_s": float(np.median([x["delta_s"] for x in per_pair])),
        "ratio_per_pair": [x["ratio"] for x in per_pair],
        "auc_none": runs["none"][0].auc,
        "auc_he": runs["he"][0].auc,
        "phases": {mode: _pooled_phases(runs[mode]) for mode in ("none", "he")},
    }


def _pooled_phases(runs: list[FederationRun]) -> dict[str, float]:
    """Median seconds per round of each coordinator phase, pooled over runs (round 1 out)."""
    values: dict[str, list[float]] = {}
    for r in runs:
        per_round = (r.phases or {}).get("per_round_s", {})
        for label, rounds in per_round.items():
            kept = [v for k, v in rounds.items() if int(k) != 1] or list(rounds.values())
            values.setdefault(label, []).extend(kept)
    return {label: float(np.median(v)) for label, v in values.items() if v}


def _parameter_count(hidden: tuple[int, ...], n_features: int) -> int:
    from models.nets import build_network
    from models.parameters import count_parameters

    return count_parameters(build_network("mlp", n_features=n_features, hidden=hidden, seed=0))


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    files = credit_files()
    settings = QUICK_SETTINGS if quick else SETTINGS
    sizes = SIZES[:1] if quick else SIZES
    work = fresh_dir(work)
    features = [c for c in csv_columns(files["test"]) if c.startswith("x")]
    parts = _split(files, work / "data")
    keys = work / "keys"
    results: list[dict[str, Any]] = []
    for index, (tag, hidden) in enumerate(sizes):
        n_params = _parameter_count(hidden, len(features))
        progress(f"he_cost: model {tag}: mlp hidden={list(hidden)} -> {n_params:,} parameters")
        size_settings = FedSettings(**{**settings.__dict__, "hidden": hidden})
        first = ("none", "he") if index % 2 == 0 else ("he", "none")
        n_pairs = PAIRS_AT_TARGET if tag == TARGET_SIZE and not quick else 1
        pairs: list[dict[str, FederationRun]] = []
        for number in range(n_pairs):
            # Alternate the order inside each pair (A B, B A, A B): a load drift cancels out.
            order = first if number % 2 == 0 else first[::-1]
            pair: dict[str, FederationRun] = {}
            for privacy in order:
                slug = f"{tag}-{privacy}-{number + 1}"
                toml = write_federation(
                    work / slug / "federation.toml",
                    name=f"bench-he-cost-{slug}",
                    model="mlp",
                    privacy=privacy,
                    settings=size_settings,
                    feature_names=features,
                    participants=parts,
                    evaluation=files["test"],
                    keys_dir=keys,
                )
                label = f"he_cost {tag} {privacy}" + (
                    f" (pair {number + 1})" if n_pairs > 1 else ""
                )
                pair[privacy] = run_federation(toml, label=label, probe=True)
            pairs.append(pair)
        results.append(_size_result(tag, hidden, n_params, pairs))
        r = results[-1]
        progress(
            f"he_cost {tag}: he/none per round = {r['ratio']:.2f}x "
            f"(he {r['he_round_s']:.2f} s vs none {r['none_round_s']:.2f} s)"
        )
    micro = micro_benchmark(
        keys,
        participants=list(parts),
        sizes=[r["parameters"] for r in results],
        repeats=2 if quick else 5,
    )
    big = results[-1]
    target = None
    if big["size"] == TARGET_SIZE:
        target = {
            "ratio": big["ratio"],
            "limit": TARGET_RATIO_100K,
            "pass": bool(big["ratio"] <= TARGET_RATIO_100K),
        }
    return {
        "settings": settings.describe(),
        "participants": N_PARTICIPANTS,
        "rows_per_participant": 2_400,
        "quick": quick,
        "sizes": results,
        "micro": micro,
        "target": target,
    }


# --- micro-benchmark -------------------------------------------------------------------


def _encoder() -> Any:
    """Seconds to encode a Flower RecordDict for transport (every object deflated), or None."""
    try:
        from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
    except ImportError:
        return None

    def encode(content: Any) -> int:
        return sum(len(obj.deflate()) for obj in get_all_nested_objects(content).values())

    return encode


def micro_benchmark(
    keys: Path, *, participants: list[str], sizes: list[int], repeats: int
) -> list[dict[str, Any]]:
    """Time each step of the encrypted path for one update of each size, and a sum of ten."""
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        progress(f"he_cost: micro-benchmark of the CKKS primitives at {n:,} values")
        # FedAvg numerators as participants encrypt them: n_k * s * w_k with n_k = 2 400
        # rows, s = 1 / the 24 000 rows of the round and weights of order 0.1.
        vectors = [rng.normal(0.0, 0.1, n) * (2_400 / 24_000) for _ in range(N_PARTICIPANTS)]
        out.append(_micro_one(keys, participants[0], vectors, repeats=repeats))
    return out


def _micro_one(
    keys: Path, participant: str, vectors: list[np.ndarray], *, repeats: int
) -> dict[str, Any]:
    from flwr.app import ArrayRecord, RecordDict

    from privacy.he import PublicContext, sum_encrypted, update_to_record, validate_update
    from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update

    n = vectors[0].size
    secret_path = keys / participant / "secret.ckks"
    public = PublicContext.load(keys / "coordinator" / "public.ckks")
    t_load, _ = time_call(lambda: SecretContext.load(secret_path), repeats=repeats)

    def first_encrypt() -> float:
        fresh = SecretContext.load(secret_path)
        took, _ = time_call(lambda: encrypt_update(fresh, vectors[0]), repeats=1)
        return took.best

    cold = [first_encrypt() for _ in range(repeats)]
    secret = SecretContext.load(secret_path)
    encrypt_update(secret, vectors[0])  # builds the encryptor once
    t_enc, update = time_call(lambda: encrypt_update(secret, vectors[0]), repeats=repeats)
    updates = [encrypt_update(secret, v) for v in vectors]
    t_val, _ = time_call(
        lambda: validate_update(public, update, expected_length=n), repeats=repeats
    )
    t_sum, total = time_call(lambda: sum_encrypted(public, updates), repeats=repeats)
    t_dec, plain = time_call(
        lambda: decrypt_aggregate(
            secret, total, contributors=len(updates), min_contributors=len(updates)
        ),
        repeats=repeats,
    )
    row: dict[str, Any] = {
        "values": n,
        "ciphertexts_per_update": len(update.chunks),
        "values_per_ciphertext": 2 * secret.params.slots,
        "ciphertext_bytes": update.nbytes,
        "plain_float32_bytes": 4 * n,
        "plain_float64_bytes": 8 * n,
        "load_secret_s": t_load.median,
        "first_encrypt_s": float(np.median(cold)),
        "encrypt_s": t_enc.median,
        "validate_one_s": t_val.median,
        "sum10_s": t_sum.median,
        "decrypt_s": t_dec.median,
        "max_abs_error_sum10": float(np.max(np.abs(plain - np.sum(vectors, axis=0)))),
    }
    encode = _encoder()
    if encode is not None:
        contents = {
            "encode_configrecord_s": lambda: RecordDict({"enc": update_to_record(update)}),
            "encode_arrayrecord_s": lambda: RecordDict(
                {"enc": ArrayRecord([np.frombuffer(c, dtype=np.uint8) for c in update.chunks])}
            ),
            "encode_plain_s": lambda: RecordDict(
                {"arrays": ArrayRecord([np.asarray(vectors[0], dtype=np.float32)])}
            ),
        }
        for key, build in contents.items():
            row[key] = _time_encode(encode, build, repeats=repeats)
    return row


def _time_encode(encode: Any, build: Any, *, repeats: int) -> float:
    return time_call(lambda: encode(build()), repeats=repeats)[0].median


# --- report ----------------------------------------------------------------------------

_REPLIES_PLAIN = "replies and aggregation (plain FedAvg)"
_REPLIES_HE = "replies and aggregation (encrypted, total)"
_ADD = "check and add one update"
_DECRYPT = "decryption round trip"
_EVALUATE = "evaluation of the global model"
_CHECKPOINT = "checkpoint"


def _split_phases(medians: dict[str, float]) -> dict[str, float | None]:
    """Per-round seconds: train phase (until the last reply is in and added, with the
    participants opening the previous aggregate), of which check-and-add, evaluation and
    checkpoint; the decryption round trip happens once, after the last round."""
    return {
        "train": medians.get(_REPLIES_HE, medians.get(_REPLIES_PLAIN)),
        "add": medians.get(_ADD),
        "decrypt": medians.get(_DECRYPT),
        "evaluate": medians.get(_EVALUATE),
        "checkpoint": medians.get(_CHECKPOINT),
    }


def phase_table(result: dict[str, Any]) -> str:
    rows = []
    for r in result["sizes"]:
        for mode in ("none", "he"):
            cells = _split_phases(r["phases"][mode])
            rows.append(
                [
                    r["size"],
                    f"`{mode}`",
                    f"{r[f'{mode}_round_s']:.2f}",
                    *(fmt(v, 3) if v is not None else "-" for v in cells.values()),
                ]
            )
    header = [
        "model",
        "mode",
        "round",
        "train phase (until the last reply is in and added)",
        f"of which: check and add the {N_PARTICIPANTS} updates, as they arrive",
        "decryption round trip (after the last round only)",
        "evaluation",
        "checkpoint",
    ]
    return table(header, rows)


def where_it_goes(result: dict[str, Any]) -> str | None:
    """One sentence on the largest model: the extra seconds of ``he`` by phase."""
    big = result["sizes"][-1]
    none, he = _split_phases(big["phases"]["none"]), _split_phases(big["phases"]["he"])
    train_none, train_he, add, decrypt = none["train"], he["train"], he["add"], he["decrypt"]
    eval_none, eval_he = none["evaluate"], he["evaluate"]
    if (
        train_none is None
        or train_he is None
        or add is None
        or decrypt is None
        or eval_none is None
        or eval_he is None
    ):
        return None
    return (
        f"At {big['parameters']:,} parameters `he` adds {big['delta_s']:.2f} s per round: "
        f"{train_he - train_none:+.2f} s in the train phase (participants receive and "
        f"decrypt the previous aggregate, then encrypt and send {N_PARTICIPANTS} ciphertext "
        f"replies instead of plain arrays; the coordinator checks and adds each one as it "
        f"arrives, {add:.3f} s in all) and {eval_he - eval_none:+.2f} s in evaluation; the "
        f"one decryption round trip after the last round took {decrypt:.2f} s."
    )


def markdown(result: dict[str, Any], *, workers: int) -> str:
    rows = []
    micro = {m["values"]: m for m in result["micro"]}
    for r in result["sizes"]:
        m = micro.get(r["parameters"])
        ok = None
        if r["size"] == TARGET_SIZE and result["target"] is not None:
            ok = result["target"]["pass"]
        rows.append(
            [
                r["size"],
                f"{r['parameters']:,}",
                f"**{r['ratio']:.2f}x**"
                + (
                    " (pairs: " + ", ".join(f"{x:.2f}x" for x in r["ratio_per_pair"]) + ")"
                    if len(r["ratio_per_pair"]) > 1
                    else ""
                ),
                f"{r['none_round_s']:.2f}",
                f"{r['he_round_s']:.2f}",
                f"{r['delta_s']:+.2f}",
                "-" if m is None else f"{m['ciphertext_bytes'] / 1e6:.2f} MB",
                "-" if m is None else f"{m['plain_float32_bytes'] / 1e6:.3f} MB",
                "-" if m is None else f"{m['ciphertext_bytes'] / m['plain_float32_bytes']:.0f}x",
                f"{fmt(r['auc_none'])} / {fmt(r['auc_he'])}",
                f"{verdict(ok)} (<= {TARGET_RATIO_100K}x)" if ok is not None else "-",
            ]
        )
    header = [
        "model",
        "parameters",
        "he / none per round",
        "none s/round",
        "he s/round",
        "he - none s",
        "ciphertext per update",
        "plain per update (float32)",
        "size ratio",
        "AUC none / he",
        "target",
    ]
    settings = ", ".join(f"{k} = {v}" for k, v in result["settings"].items())
    parts = [
        table(header, rows),
        "",
        f"{result['participants']} participants of {result['rows_per_participant']:,} rows, "
        f"{workers} of them training at a time (one Ray actor per core). Seconds per round "
        "are the median of the rounds' `duration_s` in the federation report, round 1 left "
        "out; `none` and `he` ran back to back as a pair (order alternating), and at 100k "
        f"{PAIRS_AT_TARGET} pairs ran: the ratio is the median of the pairs' ratios, the "
        "seconds the medians over the pairs. Settings: "
        f"{settings}. NVFlare reports {NVFLARE_RATIO} for its CKKS-aggregated FedAvg.",
        "",
        "### Where the time goes",
        "",
        "Measured inside the same federations (the coordinator's phases, timed in this "
        "process; median seconds per round, round 1 left out; the train phase runs from the "
        "push of the train messages until the last reply is in and, under `he`, added, so "
        "it holds the participants' local training, their encryption and the transport):",
        "",
        phase_table(result),
        "",
    ]
    sentence = where_it_goes(result)
    if sentence:
        parts += [sentence, ""]
    parts += [
        "The CKKS primitives of `privacy/he` on one update (median of repeats; encode = "
        "deflating the Flower record for transport, every object serialised and hashed):",
        "",
        _micro_table(result["micro"]),
        "",
        _explanation(result),
    ]
    return "\n".join(parts)


def _explanation(result: dict[str, Any]) -> str:
    """What the implementation does about each cost, with this run's figures."""
    m = max(result["micro"], key=lambda row: row["values"])
    values, chunks = m["values"], m["ciphertexts_per_update"]
    mb, plain_mb = m["ciphertext_bytes"] / 1e6, m["plain_float32_bytes"] / 1e6
    return (
        "Participants cache their secret key per process (`participants/keys.py`), so a "
        "round pays the warm encryption; the first round also pays the key load and the "
        "first encryption. Each complex CKKS slot carries two values (`privacy/he/packing.py`),"
        f" so {values:,} values take {chunks} ciphertexts instead of "
        f"{-(-(values + 1) // (m['values_per_ciphertext'] // 2))}, and participants encode and "
        "encrypt with SEAL's own encoder under the secret key (`privacy/he/secret/seal.py`, "
        "secret-key RLWE encryption). The coordinator reads replies as they arrive "
        "(`coordinator/exchange.py`: push, then pull at a twentieth of the time waited, "
        "2 ms to 0.1 s, instead of `send_and_receive`'s fixed 0.1 s here and 3 s on a "
        "SuperLink) and checks, parses and adds each update once (`EncryptedSum`) while "
        "the others are still training, so the sum costs almost nothing on the critical "
        "path. The sum is not decrypted by a separate message: it travels with the next "
        "round's train message, every participant decrypts it and the first one returns the "
        "plain model for evaluation; only the last round needs a decryption round trip. "
        "Participants encrypt `num_examples / rows of the round * weights`, which keeps sums "
        "at the weights' magnitude and lets the default chain be `[60, 40]` (one data prime). "
        f"What remains at {values:,} parameters is the participants' own CKKS work (about "
        f"{m['encrypt_s'] * 1e3:.0f} ms to encrypt and {m['decrypt_s'] * 1e3:.0f} ms to decrypt "
        f"each round, {N_PARTICIPANTS} participants two at a time on two cores) and the larger "
        f"messages ({mb:.1f} MB each way instead of {plain_mb:.1f} MB)."
    )


def _micro_table(micro: list[dict[str, Any]]) -> str:
    def ms(m: dict[str, Any], key: str) -> str:
        return "-" if m.get(key) is None else f"{m[key] * 1e3:.1f}"

    rows = [
        [
            f"{m['values']:,}",
            str(m["ciphertexts_per_update"]),
            f"{m['ciphertext_bytes'] / 1e6:.2f} MB",
            ms(m, "load_secret_s"),
            ms(m, "first_encrypt_s"),
            ms(m, "encrypt_s"),
            ms(m, "validate_one_s"),
            ms(m, "sum10_s"),
            ms(m, "decrypt_s"),
            f"{ms(m, 'encode_configrecord_s')} / {ms(m, 'encode_arrayrecord_s')} / "
            f"{ms(m, 'encode_plain_s')}",
            f"{m['max_abs_error_sum10']:.1e}",
        ]
        for m in micro
    ]
    header = [
        "values",
        "ciphertexts",
        "update size",
        "load key ms",
        "first encrypt ms (fresh key)",
        "encrypt ms (warm)",
        "check one update ms",
        "sum of 10 ms",
        "decrypt sum of 10 ms",
        "encode ms: ciphertexts as ConfigRecord / as ArrayRecord (as sent) / "
        "plain float32 ArrayRecord",
        "max error, sum of 10",
    ]
    return table(header, rows)
