"""Utility on real data: what privacy costs in AUC on UCI "default of credit card clients".

Three participants hold FATE's horizontal split of the data (8 000 rows each, 23
standardised features); the FATE test split (6 000 rows) evaluates every model. The same
logistic model, rounds, local epochs, batch size, learning rate and clip norm are used for
every federated run; only the privacy mode changes. The limit is the pooled data: a model
trained centrally with the same optimiser and the same number of passes over the data
(``train_centralized``, SGD, ``rounds x local_epochs`` epochs) and, as a sanity anchor,
scikit-learn's ``LogisticRegression`` trained to convergence.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
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
    run_federation,
    table,
    verdict,
    write_federation,
)

#: Chosen settings (tuning notes in BENCHMARKS.md): large batches and a clip norm near the
#: typical per-record gradient norm suit DP-SGD at small ε; plain SGD converges with them.
SETTINGS = FedSettings(
    rounds=10, local_epochs=1, batch_size=512, learning_rate=0.5, max_grad_norm=3.0
)
QUICK_SETTINGS = FedSettings(
    rounds=2, local_epochs=1, batch_size=512, learning_rate=0.5, max_grad_norm=3.0
)

#: (label, privacy mode, target ε)
RUNS: tuple[tuple[str, str, float | None], ...] = (
    ("none", "none", None),
    ("he", "he", None),
    ("dp eps=1", "dp", 1.0),
    ("dp eps=3", "dp", 3.0),
    ("dp+he eps=3", "dp+he", 3.0),
)
QUICK_RUNS = (("dp+he eps=3", "dp+he", 3.0),)

TOL_HE_VS_NONE = 0.002
TOL_NONE_VS_CENTRAL = 0.005
TOL_DP1_VS_CENTRAL = 0.03


@dataclass(frozen=True)
class Reference:
    label: str
    auc: float
    log_loss: float
    wall_s: float


def _pooled(files: dict[str, Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd

    features = [c for c in csv_columns(files["test"]) if c.startswith("x")]
    frames = [pd.read_csv(files[name]) for name in CREDIT_PARTS]
    test = pd.read_csv(files["test"])
    x = np.concatenate([f[features].to_numpy(np.float32) for f in frames])
    y = np.concatenate([f["y"].to_numpy(np.float32) for f in frames])
    return x, y, test[features].to_numpy(np.float32), test["y"].to_numpy(np.float32)


def centralized_references(files: dict[str, Path], settings: FedSettings) -> list[Reference]:
    """The pooled-data limit: same optimiser and budget, and scikit-learn to convergence."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    from models.training import evaluate, train_centralized

    x, y, x_test, y_test = _pooled(files)
    epochs = settings.rounds * settings.local_epochs
    progress(f"utility_real: centralized logistic on {len(y)} pooled rows ({epochs} epochs, SGD)")
    started = time.perf_counter()
    model = train_centralized(
        x,
        y,
        kind="logistic",
        epochs=epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        optimizer="sgd",
        seed=settings.seed,
    )
    metrics = evaluate(model, x_test, y_test)
    central = Reference(
        f"centralized, pooled rows (train_centralized, SGD, {epochs} epochs)",
        metrics.auc,
        metrics.log_loss,
        time.perf_counter() - started,
    )
    progress("utility_real: scikit-learn LogisticRegression on pooled rows")
    started = time.perf_counter()
    sk = LogisticRegression(max_iter=2000).fit(x, y)
    proba = sk.predict_proba(x_test)[:, 1]
    anchor = Reference(
        "centralized, pooled rows (scikit-learn LogisticRegression, converged)",
        float(roc_auc_score(y_test, proba)),
        float(log_loss(y_test, proba)),
        time.perf_counter() - started,
    )
    return [central, anchor]


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    files = credit_files()
    settings = QUICK_SETTINGS if quick else SETTINGS
    work = fresh_dir(work)
    features = [c for c in csv_columns(files["test"]) if c.startswith("x")]
    references = centralized_references(files, settings)
    runs: list[FederationRun] = []
    for label, privacy, epsilon in QUICK_RUNS if quick else RUNS:
        slug = label.replace(" ", "-").replace("=", "").replace("+", "")
        run_dir = work / slug
        data = run_dir / "data"  # a fresh copy: each run starts with an empty DP budget
        data.mkdir(parents=True)
        parts = {}
        for name in CREDIT_PARTS:
            parts[name.replace("_", "-")] = Path(shutil.copy2(files[name], data))
        toml = write_federation(
            run_dir / "federation.toml",
            name=f"bench-credit-{slug}",
            model="logistic",
            privacy=privacy,
            settings=settings,
            feature_names=features,
            participants=parts,
            evaluation=files["test"],
            keys_dir=work / "keys",
            target_epsilon=epsilon,
        )
        run = run_federation(toml, label=f"utility_real {label}")
        run.label = label  # the row's name in the tables and targets
        runs.append(run)
    return {
        "settings": settings.describe(),
        "quick": quick,
        "rows": {
            "train_rows": 24_000,
            "test_rows": 6_000,
            "participants": len(CREDIT_PARTS),
        },
        "references": [r.__dict__ for r in references],
        "runs": [r.to_dict() for r in runs],
        "targets": _targets(references, runs),
    }


def _by_label(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["label"]: r for r in runs}


def _targets(references: list[Reference], runs: list[FederationRun]) -> list[dict[str, Any]]:
    limit = max(r.auc for r in references)
    by = {r.label: r for r in runs}
    out = []

    def add(name: str, value: float | None, tol: float, description: str) -> None:
        out.append(
            {
                "target": name,
                "description": description,
                "value": value,
                "tolerance": tol,
                "pass": None if value is None else bool(value <= tol),
            }
        )

    none, he, dp1 = by.get("none"), by.get("he"), by.get("dp eps=1")
    add(
        "he vs none",
        None if he is None or none is None else abs(he.auc - none.auc),
        TOL_HE_VS_NONE,
        "|AUC(he) - AUC(none)|",
    )
    add(
        "none vs centralized",
        None if none is None else limit - none.auc,
        TOL_NONE_VS_CENTRAL,
        "best centralized AUC - AUC(none)",
    )
    add(
        "dp eps=1 vs centralized",
        None if dp1 is None else limit - dp1.auc,
        TOL_DP1_VS_CENTRAL,
        "best centralized AUC - AUC(dp, eps=1)",
    )
    return out


_ROW_TARGET = {
    "none": "none vs centralized",
    "he": "he vs none",
    "dp eps=1": "dp eps=1 vs centralized",
}


def markdown(result: dict[str, Any]) -> str:
    refs = result["references"]
    runs = result["runs"]
    central = refs[0]
    limit = max(r["auc"] for r in refs)
    none = _by_label(runs).get("none")
    targets = {t["target"]: t for t in result["targets"]}
    rows = []
    for ref in refs:
        rows.append(
            [
                ref["label"],
                fmt(ref["auc"]),
                fmt(ref["log_loss"]),
                fmt(ref["auc"] - central["auc"], signed=True),
                fmt(None if none is None else ref["auc"] - none["auc"], signed=True),
                fmt(ref["log_loss"] - central["log_loss"], signed=True),
                "-",
                "-",
                f"{ref['wall_s']:.1f}",
                "-",
            ]
        )
    for fed in runs:
        target = targets.get(_ROW_TARGET.get(fed["label"], ""))
        check = "-"
        if target is not None and target["value"] is not None:
            check = f"{verdict(target['pass'])} ({fmt(target['value'])} <= {target['tolerance']})"
        rows.append(
            [
                f"federated `{fed['privacy']}`"
                + (f", target eps {fed['label'].split('=')[1]}" if "eps" in fed["label"] else ""),
                fmt(fed["auc"]),
                fmt(fed["log_loss"]),
                fmt(fed["auc"] - central["auc"], signed=True),
                fmt(None if none is None else fed["auc"] - none["auc"], signed=True),
                fmt(fed["log_loss"] - central["log_loss"], signed=True),
                fmt(fed["max_epsilon"], 3),
                f"{_median_round(fed):.2f}",
                f"{fed['wall_s']:.1f}",
                check,
            ]
        )
    header = [
        "model",
        "AUC",
        "log-loss",
        "ΔAUC vs centralized",
        "ΔAUC vs `none`",
        "Δlog-loss vs centralized",
        "ε spent (max over participants)",
        "s/round (median)",
        "wall s",
        "target",
    ]
    settings = result["settings"]
    lines = [
        table(header, rows),
        "",
        "Targets are checked against the better of the two centralized models "
        f"(AUC {limit:.4f}); `he` against `none`. ΔAUC columns are the figures that matter; "
        "seconds are absolute, on a shared machine.",
        "",
        "Federated settings, identical for every privacy mode: "
        + ", ".join(f"{k} = {v}" for k, v in settings.items())
        + f"; {result['rows']['participants']} participants of 8 000 rows, evaluation on the "
        "6 000-row test split after the last round. ε is accounted by each participant "
        "(RDP, δ = 1e-5, Poisson sampling, record-level) over all rounds of the run.",
    ]
    return "\n".join(lines)


def _median_round(run: dict[str, Any]) -> float:
    durations = run["round_durations_s"][1:] or run["round_durations_s"]
    return float(np.median(durations))
