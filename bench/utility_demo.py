"""Utility on the demo scenario: does federating the factories beat any one of them alone?

The demo's IoT risk model is trained across the six factory edge nodes of the scenario
(``participants.demo.generate_scenario(seed=7, firms_per_factory=300)``, as
``fedrisk demo``) with the federation file the demo itself
writes (``write_iot_federation``), in ``dp+he`` and in ``none``. References, all evaluated
on the scenario's evaluation file: the model trained on the pooled consented rows of all
factories (the limit, which the law forbids in production) and each factory's own model
(``run_baselines``, the same network). The federated model must beat the best single
factory; the margin is the figure that matters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import (
    BenchError,
    FederationRun,
    fmt,
    fresh_dir,
    progress,
    run_federation,
    table,
    verdict,
)

ROUNDS = 10
QUICK_ROUNDS = 2
SEED = 7
MODES = ("dp+he", "none")
QUICK_MODES = ("dp+he",)
#: run_baselines' default (what the demo uses); a quick run trains the references briefly.
BASELINE_EPOCHS = 20
QUICK_BASELINE_EPOCHS = 2


def available() -> str | None:
    """``None`` if the demo scenario generator can be imported, else why not."""
    try:
        from participants.demo import generate_scenario, write_iot_federation  # noqa: F401
    except ImportError as exc:
        return f"participants.demo is not ready: {exc}"
    return None


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    problem = available()
    if problem is not None:
        raise BenchError(problem)
    from models.baselines import run_baselines
    from models.federation import load_federation
    from models.resolve import architecture, training_schema
    from models.tabular import load_table
    from participants.demo import generate_scenario, write_iot_federation
    from participants.local_data import load_eligible

    work = fresh_dir(work)
    scenario = work / "scenario"
    progress(f"utility_demo: generating the demo scenario (seed {SEED})")
    from fedrisk import DEMO_FIRMS_PER_FACTORY, DEMO_LEARNING_RATE, DEMO_LOCAL_EPOCHS

    manifest = generate_scenario(scenario, seed=SEED, firms_per_factory=DEMO_FIRMS_PER_FACTORY)
    rounds = QUICK_ROUNDS if quick else ROUNDS
    runs: list[FederationRun] = []
    spec = None
    for privacy in QUICK_MODES if quick else MODES:
        path = write_iot_federation(
            manifest,
            scenario / f"iot-federation-{privacy.replace('+', '')}.toml",
            privacy=privacy,
            rounds=rounds,
            local_epochs=DEMO_LOCAL_EPOCHS,
            learning_rate=DEMO_LEARNING_RATE,
        )
        spec = load_federation(path)
        runs.append(run_federation(path, label=f"utility_demo {privacy}"))
    assert spec is not None
    progress("utility_demo: pooled (centralized) and single-factory references")
    arch = architecture(spec)
    eligible = {p.name: load_eligible(spec, p) for p in spec.participants}
    parts = {name: e.data for name, e in eligible.items()}
    if spec.evaluation_file is None:
        raise BenchError(f"{spec.path} names no evaluation file")
    evaluation = load_table(spec.evaluation_file, training_schema(spec))
    baselines = run_baselines(
        parts,
        evaluation,
        kind=arch.kind,
        hidden=arch.hidden,
        seed=spec.seed,
        epochs=QUICK_BASELINE_EPOCHS if quick else BASELINE_EPOCHS,
    )
    best_name, best_auc = baselines.best_single
    return {
        "quick": quick,
        "seed": SEED,
        "federation": {
            "model": spec.model,
            "architecture": arch.kind,
            "hidden": list(arch.hidden),
            "rounds": spec.rounds,
            "baseline_epochs": QUICK_BASELINE_EPOCHS if quick else BASELINE_EPOCHS,
            "local_epochs": spec.local_epochs,
            "batch_size": spec.batch_size,
            "learning_rate": spec.learning_rate,
            "target_epsilon": None if spec.dp is None else spec.dp.target_epsilon,
            "max_grad_norm": None if spec.dp is None else spec.dp.max_grad_norm,
        },
        "rows": {
            name: {"total": e.rows_total, "used": e.rows_used} for name, e in eligible.items()
        },
        "evaluation_rows": int(evaluation.n_rows),
        "centralized_auc": baselines.centralized_auc,
        "single_auc": baselines.single_auc,
        "best_single": {"name": best_name, "auc": best_auc},
        "runs": [r.to_dict() for r in runs],
        "margins": {r.privacy: r.auc - best_auc for r in runs},
        "pass": {r.privacy: bool(r.auc > best_auc) for r in runs},
    }


def markdown(result: dict[str, Any]) -> str:
    best = result["best_single"]
    central = result["centralized_auc"]
    rows = [
        [
            "centralized, pooled consented rows (not allowed in production)",
            fmt(central),
            fmt(central - best["auc"], signed=True),
            "-",
            "-",
            "-",
        ]
    ]
    for fed in result["runs"]:
        margin = result["margins"][fed["privacy"]]
        rows.append(
            [
                f"federated `{fed['privacy']}`",
                fmt(fed["auc"]),
                f"**{margin:+.4f}**",
                fmt(fed["max_epsilon"], 3),
                f"{fed['wall_s']:.1f}",
                f"{verdict(result['pass'][fed['privacy']])} (beats best single)",
            ]
        )
    for name, auc in sorted(result["single_auc"].items()):
        used = result["rows"].get(name, {}).get("used", "?")
        label = f"{name} alone ({used} consented rows)"
        if name == best["name"]:
            label = f"**best single**: {label}"
        rows.append([label, fmt(auc), fmt(auc - best["auc"], signed=True), "-", "-", "-"])
    fed = result["federation"]
    header = ["model", "AUC", "margin vs best single", "ε spent (max)", "wall s", "target"]
    return "\n".join(
        [
            table(header, rows),
            "",
            f"IoT risk model `{fed['model']}` ({fed['architecture']}, hidden {fed['hidden']}) "
            f"as the demo trains it: {fed['rounds']} rounds, {fed['local_epochs']} local epochs, "
            f"batch {fed['batch_size']}, learning rate {fed['learning_rate']}, DP target "
            f"ε = {fed['target_epsilon']} (δ = 1e-5, clip {fed['max_grad_norm']}) in `dp+he`. "
            f"Scenario seed {result['seed']}; {len(result['rows'])} factory nodes; "
            f"{result['evaluation_rows']} evaluation rows. References use `run_baselines` "
            f"(same network, Adam, {fed['baseline_epochs']} epochs).",
        ]
    )
