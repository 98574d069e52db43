"""Plots a model steward wants to see after a run (PNG, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .report import FederationReport


def plot_auc_per_round(
    reports: dict[str, FederationReport],
    path: Path,
    *,
    references: dict[str, float] | None = None,
    title: str = "AUC per round",
) -> Path:
    """One line per federated run (label → report), dashed lines for reference AUCs."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, report in reports.items():
        rounds = [r.server_round for r in report.rounds if r.auc is not None]
        aucs = [r.auc for r in report.rounds if r.auc is not None]
        ax.plot(rounds, aucs, marker="o", label=label)
        failed = [r.server_round for r in report.rounds if r.status == "failed"]
        for server_round in failed:
            ax.axvline(server_round, color="red", alpha=0.2)
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, linestyle="--", color=f"C{i + 5}", label=f"{label} ({value:.3f})")
    ax.set_xlabel("round")
    ax.set_ylabel("AUC on the evaluation set")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
