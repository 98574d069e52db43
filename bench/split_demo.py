"""Split network vs vertical LR on the demo's farmers and SMEs, at the demo's size and larger.

The demo's farmer-credit and SME-risk ground truths are nonlinear (thresholds, ratios of a
bank figure to a government one, interactions inside the platform's data). Does a split
network, which can learn them, beat vertical logistic regression, which cannot? Each model
is generated as ``fedrisk demo`` generates it (seed 7, consent filter applied) with
``DEMO_FARMERS`` / ``DEMO_SMES`` bank customers and with four times as many, then trained
on the aligned rows with the demo's own settings: vertical LR (plaintext codec: CKKS gives
the same model to 1e-4 AUC, `vertical_lr`), and the split network without noise, with label
DP only (noised gradients) and with cut-layer DP on both releases (the demo's choice). The
references are the pooled models (LR and gradient-boosted trees, which the law forbids in
production) and the bank alone, on the same holdout rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import fmt, fresh_dir, progress, table, verdict
from .vertical_lr import split_variants, train_lr

SEED = 7
SCALES = (1, 4)
QUICK_SCALES = (1,)
QUICK_EPOCHS = 1
MODELS = ("farmer_credit", "sme_risk")


def _demo_settings() -> dict[str, Any]:
    import fedrisk

    return {
        "bank_customers": fedrisk.DEMO_FARMERS,
        "lr_epochs": fedrisk.DEMO_VERTICAL_EPOCHS,
        "lr_batch": fedrisk.DEMO_VERTICAL_BATCH,
        "split_epochs": fedrisk.DEMO_SPLIT_EPOCHS,
        "split_batch": fedrisk.DEMO_SPLIT_BATCH,
        "split_learning_rate": fedrisk.DEMO_SPLIT_LEARNING_RATE,
    }


def _one(work: Path, settings: dict[str, Any], *, scale: int, quick: bool) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from models.baselines import align_rows, run_vertical_baselines
    from models.federation import load_federation
    from participants.demo import generate_scenario, write_vertical_federation
    from participants.local_data import load_eligible
    from privacy.vertical import VerticalLRConfig

    customers = settings["bank_customers"] * scale
    progress(f"split_demo: scenario with {customers:,} farmers and {customers:,} SMEs")
    folder = fresh_dir(work / f"x{scale}")
    manifest = generate_scenario(
        folder, seed=SEED, n_farmers=customers, n_smes=customers, firms_per_factory=40
    )
    out: dict[str, Any] = {"bank_customers": customers, "models": {}}
    for model in MODELS:
        path = write_vertical_federation(
            manifest, folder / f"{model}.toml", model=model, privacy="none"
        )
        spec = load_federation(path)
        assert spec.vertical is not None
        tables = {p.name: load_eligible(spec, p).data for p in spec.participants}
        guest = tables[spec.vertical.guest]
        hosts = {name: tables[name] for name in spec.vertical.hosts}
        rows = align_rows(guest, hosts, holdout=spec.vertical.holdout, seed=spec.seed)
        refs = run_vertical_baselines(guest, hosts, holdout=spec.vertical.holdout, seed=spec.seed)
        tr, te, y = rows.train, rows.test, rows.labels
        (xh,) = rows.hosts
        progress(f"split_demo: {model} x{scale}, vertical LR on {tr.size:,} rows")
        config = VerticalLRConfig(learning_rate=spec.learning_rate, batch_rows=settings["lr_batch"])
        lr_guest, lr_host, _ = train_lr(
            "plain",
            rows.own[tr],
            xh[tr],
            y[tr],
            epochs=QUICK_EPOCHS if quick else settings["lr_epochs"],
            config=config,
        )
        logits = lr_guest.logits(rows.own[te], [lr_host.score_part(xh[te])])
        split = split_variants(
            rows.own, xh, y, tr, te,
            epochs=QUICK_EPOCHS if quick else settings["split_epochs"],
            learning_rate=settings["split_learning_rate"],
            batch_rows=settings["split_batch"],
            seed=spec.seed,
            label=f"split_demo: {model} x{scale}",
        )  # fmt: skip
        out["models"][model] = {
            "aligned_rows": refs.aligned_rows,
            "holdout_rows": refs.holdout_rows,
            "vertical_lr": float(roc_auc_score(y[te], logits)),
            "pooled_lr": refs.centralized_auc,
            "pooled_gbt": refs.centralized_gbt_auc,
            "bank_alone": refs.guest_only_auc,
            "split_nn": split,
        }
    return out


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    settings = _demo_settings()
    scales = QUICK_SCALES if quick else SCALES
    runs = [_one(work, settings, scale=s, quick=quick) for s in scales]
    demo = runs[0]["models"]
    margins = {
        model: _split(demo[model], "cut-layer DP")["auc"] - demo[model]["vertical_lr"]
        for model in MODELS
    }
    return {
        "settings": settings,
        "runs": runs,
        "target": {"margins": margins, "pass": {m: v > 0 for m, v in margins.items()}},
    }


def _split(result: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(r for r in result["split_nn"] if r["variant"].startswith(prefix))


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    rows = []
    for run in result["runs"]:
        for model, r in run["models"].items():
            nets = [_split(r, p) for p in ("no noise", "label DP", "cut-layer DP")]
            eps = max(nets[2]["epsilon"].values(), default=float("nan"))
            rows.append(
                [
                    model,
                    f"{run['bank_customers']:,}",
                    f"{r['aligned_rows']:,} / {r['holdout_rows']:,}",
                    fmt(r["vertical_lr"]),
                    *(fmt(n["auc"]) for n in nets),
                    f"{eps:.2f}",
                    fmt(r["pooled_lr"]),
                    fmt(r["pooled_gbt"]),
                    fmt(r["bank_alone"]),
                ]
            )
    header = [
        "model", "bank customers", "aligned / holdout rows", "vertical LR",
        "split, no noise", "split, label DP", "split, cut-layer DP", "ε per release",
        "pooled LR", "pooled GBT", "bank alone",
    ]  # fmt: skip
    target = result["target"]
    verdicts = ", ".join(
        f"{m} {target['margins'][m]:+.4f} ({verdict(target['pass'][m])})" for m in target["margins"]
    )
    return "\n".join(
        [
            table(header, rows),
            "",
            f"Vertical LR: {s['lr_epochs']} epochs, batches of {s['lr_batch']}. Split network: "
            f"the federation-file shapes and clips, Adam at {s['split_learning_rate']}, "
            f"Poisson batches of {s['split_batch']} expected rows, {s['split_epochs']} epochs, "
            "noise multiplier 1.0 on each noised release (ε at δ = 1e-5). AUC on the "
            "federation's own 25 % holdout (a few hundred defaults at the demo's size: "
            "differences under about 0.02 are within noise).",
            "",
            f"**Split network with cut-layer DP minus vertical LR, at the demo's size:** "
            f"{verdicts}; target > 0 (issue 3).",
        ]
    )
