"""The score before and after a change, at the node (participants/monitoring/scoring.py):
the served IoT model over the firm's monthly indicators, months picked around the change."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.errors import DataError, ModelNotFoundError
from models.nets import build_network
from models.parameters import set_flat
from models.registry import ModelRegistry
from models.schema import FeatureSpec, TabularSchema
from participants.monitoring import ChangeEvent, FactoryMonitor, Reading
from participants.monitoring.scoring import ChangeScorer

SCHEMA = TabularSchema(
    id="row_id",
    label="label",
    features=(
        FeatureSpec(name="utilisation", type="float", min=0.0, max=1.0),
        FeatureSpec(name="energy_trend", type="float", min=-1.0, max=5.0),
    ),
)
FIRM = "91330100MA00000001"
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One logistic IoT model: risk falls with utilisation and with the energy trend."""
    root = tmp_path_factory.mktemp("registry")
    net = build_network("logistic", n_features=2, seed=0)
    set_flat(net, np.array([-3.0, -2.0, 1.0]))
    ModelRegistry(root).register(
        model=net,
        name="demo-iot",
        spec_name="iot_risk",
        schema=SCHEMA,
        n_features=2,
        mode="horizontal",
        participants={"factory-01": 10},
        rounds=1,
        strategy="FedAvg",
        privacy_mode="none",
    )
    return root


def _features(path: Path) -> pd.DataFrame:
    rows = [
        (f"{FIRM}-{m}", FIRM, m, u, t)
        for m, u, t in zip(MONTHS, (0.9, 0.8, 0.7, 0.3), (0.0, -0.1, -0.2, -0.6), strict=True)
    ]
    rows.append(("91330100MA00000002-2025-04", "91330100MA00000002", "2025-04", 0.5, 0.0))
    frame = pd.DataFrame(
        rows, columns=["row_id", "firm_id", "month", "utilisation", "energy_trend"]
    )
    frame.to_csv(path, index=False)
    return frame


def _probability(registry: Path, frame: pd.DataFrame, month: str) -> float:
    """The model's probability for FIRM's ``month``, from its torch state (not ONNX)."""
    net = ModelRegistry(registry).latest("demo-iot").load_network()
    row = frame[(frame["firm_id"] == FIRM) & (frame["month"] == month)]
    x = torch.tensor(row[["utilisation", "energy_trend"]].to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        return float(torch.sigmoid(net(x)).reshape(-1)[0])


def _event(*, since: date, detected: datetime, subject: str = FIRM) -> ChangeEvent:
    return ChangeEvent.build(
        factory="factory-01",
        subject_id=subject,
        indicator="energy",
        detector="PageHinkley",
        detected_at=detected,
        since=since,
        before=2000.0,
        after=1200.0,
    )


def test_the_scores_are_those_of_the_month_before_and_the_latest_month_since(
    tmp_path: Path, registry: Path
) -> None:
    # Arrange
    frame = _features(tmp_path / "monthly.csv")
    scorer = ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "monthly.csv")

    # Act
    scored = scorer.score(_event(since=date(2025, 3, 10), detected=datetime(2025, 4, 2, 6)))

    # Assert
    assert scored.score_before == pytest.approx(_probability(registry, frame, "2025-02"), abs=1e-4)
    assert scored.score_after == pytest.approx(_probability(registry, frame, "2025-04"), abs=1e-4)
    assert scored.score_after > scored.score_before  # utilisation fell: riskier
    assert scored.model_version == ModelRegistry(registry).latest("demo-iot").version
    assert f"before {scored.score_before:.1%}" in scored.text
    assert (
        scored.before == 2000.0
        and scored.event_id
        == _event(since=date(2025, 3, 10), detected=datetime(2025, 4, 2, 6)).event_id
    )  # the figures and the id are the event's own


def test_a_month_that_is_not_held_leaves_its_score_out(tmp_path: Path, registry: Path) -> None:
    _features(tmp_path / "monthly.csv")
    scorer = ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "monthly.csv")

    first = scorer.score(_event(since=date(2025, 1, 20), detected=datetime(2025, 1, 28)))
    later = scorer.score(_event(since=date(2025, 6, 1), detected=datetime(2025, 6, 9)))
    stranger = scorer.score(
        _event(since=date(2025, 3, 1), detected=datetime(2025, 3, 9), subject="91330100MA09")
    )

    assert first.score_before is None and first.score_after is not None
    assert later.score_after is None and later.score_before is not None  # no June row yet
    assert stranger.score_before is None and stranger.score_after is None
    assert (
        stranger.text
        == _event(
            since=date(2025, 3, 1), detected=datetime(2025, 3, 9), subject="91330100MA09"
        ).text
    )


def test_bad_indicator_files_and_unknown_models_are_named(tmp_path: Path, registry: Path) -> None:
    frame = _features(tmp_path / "monthly.csv")
    frame.drop(columns=["month"]).to_csv(tmp_path / "no-month.csv", index=False)
    frame.assign(month=["2025-01", "Feb", "2025-03", "2025-04", "2025-04"]).to_csv(
        tmp_path / "bad-month.csv", index=False
    )
    frame.drop(columns=["energy_trend"]).to_csv(tmp_path / "no-feature.csv", index=False)

    with pytest.raises(DataError, match=r"no-month.csv.*month.*missing"):
        ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "no-month.csv")
    with pytest.raises(DataError, match=r"bad-month.csv.*row 3.*month"):
        ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "bad-month.csv")
    with pytest.raises(DataError, match="energy_trend"):
        ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "no-feature.csv")
    with pytest.raises(ModelNotFoundError):
        ChangeScorer(registry=registry, model="demo-sme", features=tmp_path / "monthly.csv")


def test_the_monitor_sends_its_events_with_the_scores(tmp_path: Path, registry: Path) -> None:
    # Arrange: weekday shifts from January; energy falls 50 % from 2025-03-31.
    frame = _features(tmp_path / "monthly.csv")
    scorer = ChangeScorer(registry=registry, model="demo-iot", features=tmp_path / "monthly.csv")
    stamps = pd.date_range("2025-01-06", "2025-04-27", freq="15min", inclusive="left")
    rng = np.random.default_rng(1)
    working = (stamps.dayofweek < 5) & (stamps.hour >= 7) & (stamps.hour < 19)
    kwh = 3.0 + np.asarray(working) * rng.uniform(30.0, 50.0, len(stamps))
    kwh[stamps >= pd.Timestamp("2025-03-31")] *= 0.5
    readings = [Reading(t, float(k)) for t, k in zip(stamps.to_pydatetime(), kwh, strict=True)]
    monitor = FactoryMonitor(
        factory="factory-01",
        subject_id=FIRM,
        idle_kwh=5.0,
        state=tmp_path / "state.sqlite",
        score=scorer.score,
    )

    # Act
    events = [e for e in monitor.add(readings) if e.indicator == "energy"]
    pending = monitor.pending()
    monitor.close()

    # Assert
    (event,) = events
    before_month = max(m for m in MONTHS if m < f"{event.since:%Y-%m}")
    assert event.score_before == pytest.approx(
        _probability(registry, frame, before_month), abs=1e-4
    )
    assert event.score_after == pytest.approx(_probability(registry, frame, "2025-04"), abs=1e-4)
    sent = next(p for p in pending if p["event_id"] == event.event_id)
    assert sent["score_before"] == event.score_before and sent["model_version"] is not None
