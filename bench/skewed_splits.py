"""Horizontal training on skewed participants: FedAvg, FedProx, FedAdam and FedYogi.

UCI "default of credit card clients" (FATE's horizontal split pooled: 24 000 rows, 23
standardised features; its 6 000-row test split evaluates every model) is re-split into three
participants two ways: *feature-skewed* (rows sorted on ``x0``, the credit limit, and cut
in thirds: each lender serves another segment) and *label-skewed* (each class spread over
the three by Dirichlet(0.5) shares, so default rates differ widely). Every strategy trains
the README example's logistic model with its settings (DP-SGD at ε = 3 over the planned
rounds, batch 64, learning rate 0.05, one local epoch) through Flower's simulation runtime,
for up to 40 rounds. Measured: the first round whose AUC reaches pooled - 0.005 (pooled:
scikit-learn's LogisticRegression on the pooled rows, converged), the final AUC, and the
round the stop-on-plateau rule (patience 5, min_delta 0.001, ``coordinator.early_stopping``)
stops at when replayed on the run's AUC per round. Privacy mode ``dp``: CKKS (``dp+he``)
sums the same updates exactly (tests, 1e-5) and would only add time.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    ROOT,
    FederationRun,
    FedSettings,
    credit_files,
    fmt,
    fresh_dir,
    progress,
    run_federation,
    table,
    write_federation,
)

SETTINGS = FedSettings(rounds=40, local_epochs=1, batch_size=64, learning_rate=0.05)
QUICK_SETTINGS = FedSettings(rounds=3, local_epochs=1, batch_size=64, learning_rate=0.05)
TARGET_EPSILON = 3.0
GAP = 0.005
PATIENCE, MIN_DELTA = 5, 0.001
#: The server optimisers' η (Flower's FedAdam default; FedYogi at the same step).
SERVER_LR = 0.1
STRATEGIES: dict[str, tuple[str, str]] = {
    "FedAvg": ("fedavg", ""),
    "FedProx (mu 0.01)": ("fedprox", ""),
    f"FedAdam (eta {SERVER_LR})": ("fedadam", f"[server_optimizer]\nlearning_rate = {SERVER_LR}"),
    f"FedYogi (eta {SERVER_LR})": ("fedyogi", f"[server_optimizer]\nlearning_rate = {SERVER_LR}"),
}
#: The plot of a full run, committed beside BENCHMARKS.md's table.
PLOT = Path("bench/plots/skewed-splits-auc.png")
SPLITS = ("feature-skewed (sorted on x0)", "label-skewed (Dirichlet 0.5)")


def _pooled(files: dict[str, Path]) -> tuple[Any, Any]:
    import pandas as pd

    train = pd.concat([pd.read_csv(files[n]) for n in ("guest", "host_1", "host_2")])
    return train.reset_index(drop=True), pd.read_csv(files["test"])


def split_rows(train: Any, how: str, *, seed: int = 7) -> list[Any]:
    """Three participants' rows of the pooled table, skewed as ``how`` says."""
    if how.startswith("feature"):
        ordered = train.sort_values("x0", kind="stable").reset_index(drop=True)
        cuts = np.linspace(0, len(ordered), 4).astype(int)
        return [ordered.iloc[a:b].reset_index(drop=True) for a, b in pairwise(cuts)]
    rng = np.random.default_rng(seed)
    owner = np.empty(len(train), dtype=int)
    for label in (0, 1):
        rows = np.flatnonzero(train["y"].to_numpy() == label)
        rng.shuffle(rows)
        shares = rng.dirichlet([0.5, 0.5, 0.5])
        cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
        for k, chunk in enumerate(np.split(rows, cuts)):
            owner[chunk] = k
    return [train[owner == k].reset_index(drop=True) for k in range(3)]


def pooled_auc(train: Any, test: Any) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    features = [c for c in test.columns if c.startswith("x")]
    model = LogisticRegression(max_iter=2000).fit(train[features], train["y"])
    return float(roc_auc_score(test["y"], model.predict_proba(test[features])[:, 1]))


def rounds_to(round_auc: list[float | None], target: float) -> int | None:
    """The first round whose AUC reaches ``target``."""
    return next((r for r, auc in enumerate(round_auc, 1) if auc is not None and auc >= target),
                None)  # fmt: skip


def plateau_round(round_auc: list[float | None]) -> tuple[int | None, float | None]:
    """Where stop-on-plateau stops this curve, and the AUC there (None: it never stops)."""
    from coordinator.early_stopping import PlateauStop

    stop = PlateauStop(patience=PATIENCE, min_delta=MIN_DELTA)
    for server_round, auc in enumerate(round_auc, 1):
        if stop.observe(server_round, auc):
            return server_round, auc
    return None, None


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    settings = QUICK_SETTINGS if quick else SETTINGS
    files = credit_files()
    work = fresh_dir(work)
    train, test = _pooled(files)
    limit = pooled_auc(train, test)
    features = [c for c in test.columns if c.startswith("x")]
    progress(f"skewed_splits: pooled LR AUC {limit:.4f}; target {limit - GAP:.4f}")
    out: list[dict[str, Any]] = []
    # A quick (smoke) run: one split, plain averaging and one server optimiser, 3 rounds.
    splits = SPLITS[:1] if quick else SPLITS
    strategies = dict(list(STRATEGIES.items())[::2]) if quick else STRATEGIES
    for s_index, how in enumerate(splits):
        parts = split_rows(train, how)
        split_dir = work / f"split-{s_index}"
        shape = [{"rows": len(p), "default_rate": round(float(p["y"].mean()), 4),
                  "x0_mean": round(float(p["x0"].mean()), 3)} for p in parts]  # fmt: skip
        progress(f"skewed_splits: {how}: {shape}")
        runs = []
        for label, (strategy, tables) in strategies.items():
            run_dir = split_dir / strategy
            data = run_dir / "data"  # fresh files: each run starts with an empty DP budget
            data.mkdir(parents=True)
            files_of = {}
            for k, part in enumerate(parts):
                path = data / f"lender-{k + 1}.csv"
                part.to_csv(path, index=False)
                files_of[f"lender-{k + 1}"] = path
            toml = write_federation(
                run_dir / "federation.toml", name=f"bench-skew-{s_index}-{strategy}",
                model="logistic", privacy="dp", settings=settings, feature_names=features,
                participants=files_of, evaluation=files["test"], keys_dir=work / "keys",
                target_epsilon=TARGET_EPSILON, strategy=strategy, tables=tables,
            )  # fmt: skip
            result: FederationRun = run_federation(toml, label=f"skewed_splits {how} {label}")
            stop_round, stop_auc = plateau_round(result.round_auc)
            runs.append({
                "strategy": label, "final_auc": result.auc, "round_auc": result.round_auc,
                "rounds_to_target": rounds_to(result.round_auc, limit - GAP),
                "plateau_round": stop_round, "plateau_auc": stop_auc,
                "epsilon": result.max_epsilon, "wall_s": result.wall_s,
            })  # fmt: skip
        out.append({"split": how, "participants": shape, "runs": runs})
    document = {
        "settings": settings.describe()
        | {"target_epsilon": TARGET_EPSILON, "server_learning_rate": SERVER_LR},
        "pooled_auc": limit,
        "target_auc": limit - GAP,
        "splits": out,
        "quick": quick,
    }
    plot(document, (work / PLOT.name) if quick else ROOT / PLOT)
    return document


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result["splits"]), figsize=(12, 4.2), sharey=True)
    for ax, split in zip(np.atleast_1d(axes), result["splits"], strict=True):
        for run in split["runs"]:
            rounds = range(1, len(run["round_auc"]) + 1)
            ax.plot(rounds, run["round_auc"], label=run["strategy"])
        ax.axhline(result["pooled_auc"], color="k", linestyle="--", label="pooled LR")
        ax.axhline(result["target_auc"], color="gray", linestyle=":", label="pooled - 0.005")
        ax.set_title(split["split"])
        ax.set_xlabel("round")
    np.atleast_1d(axes)[0].set_ylabel("test AUC")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for split in result["splits"]:
        for run in split["runs"]:
            reached = run["rounds_to_target"]
            rows.append([
                split["split"], run["strategy"],
                "not within " + str(len(run["round_auc"])) if reached is None else str(reached),
                fmt(run["final_auc"]), fmt(run["final_auc"] - result["pooled_auc"], signed=True),
                "-" if run["plateau_round"] is None
                else f"{run['plateau_round']} ({fmt(run['plateau_auc'])})",
                fmt(run["epsilon"], 2),
            ])  # fmt: skip
    shapes = "; ".join(
        f"{s['split']}: "
        + ", ".join(f"{p['rows']:,} rows, {100 * p['default_rate']:.1f} % defaults"
                    for p in s["participants"])
        for s in result["splits"]
    )  # fmt: skip
    best = {
        s["split"]: min(
            (r for r in s["runs"] if r["rounds_to_target"] is not None),
            key=lambda r: r["rounds_to_target"], default=None,
        )
        for s in result["splits"]
    }  # fmt: skip
    verdicts = "; ".join(
        f"{split}: none reaches it" if r is None
        else f"{split}: {r['strategy']} first, round {r['rounds_to_target']}"
        for split, r in best.items()
    )  # fmt: skip
    return "\n".join([
        table(["split", "strategy", "rounds to pooled - 0.005", "final AUC", "vs pooled",
               "plateau stop at round (AUC)", "ε"], rows),
        "",
        f"Pooled LR (scikit-learn, converged) AUC {result['pooled_auc']:.4f}; target "
        f"{result['target_auc']:.4f}. Participants: {shapes}.",
        "",
        f"**Fastest to the target:** {verdicts}.",
        "",
        "![AUC per round](bench/plots/skewed-splits-auc.png)",
    ])  # fmt: skip
