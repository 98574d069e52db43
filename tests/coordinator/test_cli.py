"""The coordinator's terminal output: the demo's and training's tables, whole in a log."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from coordinator.cli import print_comparison, print_summary, print_vertical_comparison
from coordinator.report import FederationReport, ParticipantRecord, RoundRecord
from models.baselines import BaselineResult, VerticalBaselines

NODES = ("factory-park-north-edge-07", "factory-park-riverside-edge-12")
VERTICAL = ("demo-bank-farmer-accounts", "government-agricultural-platform")


def _report(name: str, participants: tuple[str, ...], *, vertical: bool) -> FederationReport:
    epsilon = (
        {f"{participants[0]}.labels": 2.31, f"{participants[1]}.features": 2.29}
        if vertical
        else dict.fromkeys(participants, 2.987)
    )
    return FederationReport(
        federation=name,
        model=name.removeprefix("demo-").replace("-", "_"),
        mode="vertical" if vertical else "horizontal",
        privacy_mode="dp+he",
        privacy={"dp": {"delta": 1e-5}},
        strategy="encrypted-fedavg",
        rounds_planned=1,
        schema_hash="ab" * 32,
        participants=[
            ParticipantRecord(
                p,
                3300,
                3012,
                {"expired": 41, "never_granted": 187, "withdrawn": 60},
                accepted=True,
            )
            for p in participants
        ],
        rounds=[RoundRecord(1, "ok", 0.8123, 0.41, list(participants), {}, {}, epsilon, 1.5)],
        final={"auc": 0.8123, "log_loss": 0.41, "epsilon": epsilon},
        model_version=f"{name}/v1",
    )


def _log_console() -> tuple[Console, io.StringIO]:
    """What a CI log or ``| tee`` gets: not a terminal, so rich assumes 80 columns."""
    out = io.StringIO()
    return Console(file=out, force_terminal=False), out


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)


def test_the_training_summary_keeps_whole_names_in_a_log() -> None:
    console, out = _log_console()

    print_summary(console, _report("demo-farmer-credit", VERTICAL, vertical=True))

    text = out.getvalue()
    assert console.width == 80
    assert "…" not in text
    for name in (*VERTICAL, "demo-farmer-credit/v1", "never_granted 187", "features 2.290"):
        assert name in text, name


def test_the_demo_comparison_keeps_whole_names_in_a_log() -> None:
    console, out = _log_console()
    baselines = BaselineResult(centralized_auc=0.83, single_auc=dict.fromkeys(NODES, 0.7))

    print_comparison(console, _report("demo-iot", NODES, vertical=False), baselines)

    text = out.getvalue()
    assert "…" not in text
    assert all(f"best single node ({NODES[0]})" in text or f"{n} alone" in text for n in NODES)


def test_the_demo_vertical_table_keeps_whole_model_names_in_a_log() -> None:
    console, out = _log_console()
    base = VerticalBaselines(0.70, 0.78, 0.779, aligned_rows=3712, holdout_rows=928)
    reports = {
        "vertical LR (he)": _report("demo-farmer-credit", VERTICAL, vertical=True),
        "split network (dp)": _report("demo-farmer-credit-split", VERTICAL, vertical=True),
    }

    print_vertical_comparison(
        console, {"farmer_credit": (reports, base), "sme_risk": (reports, base)}
    )

    text = out.getvalue()
    assert "…" not in text
    for name in ("farmer_credit", "sme_risk", "federated vertical LR (he)", "3712/928"):
        assert name in text, name
    assert "federated split network (dp)" in " ".join(text.split())


def test_in_a_terminal_the_tables_still_fit_the_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)

    print_summary(console, _report("demo-farmer-credit", VERTICAL, vertical=True))

    assert max(len(line) for line in out.getvalue().splitlines()) <= 100
    assert "…" not in out.getvalue()


def test_the_summary_says_when_training_stopped_on_a_plateau() -> None:
    console, out = _log_console()
    report = _report("credit-homo", NODES, vertical=False)
    report.final["stopped"] = {"reason": "plateau", "round": 17, "planned": 40,
                               "detected_at_round": 17, "best_round": 12, "best_auc": 0.7312,
                               "patience": 5, "min_delta": 0.001}  # fmt: skip

    print_summary(console, report)

    assert "Stopped on a plateau after round 17 of 40" in out.getvalue()
    assert "best 0.7312 in round 12" in out.getvalue()
