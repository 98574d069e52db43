"""Batch scoring of a file with a registered model (models/scoring.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from torch import nn

from models.errors import DataError, ModelNotFoundError
from models.nets import build_network, predict_proba
from models.parameters import set_flat
from models.registry import ModelRegistry
from models.schema import FeatureSpec, TabularSchema
from models.scoring import RISK_BANDS, risk_band, risk_bands, score_file

SCHEMA = TabularSchema(
    id="subject_id",
    label="default_12m",
    features=(
        FeatureSpec(name="utilisation", type="float", min=0.0, max=1.0),
        FeatureSpec(name="defect_rate", type="float", min=0.0, max=1.0),
        FeatureSpec(name="payment_delay_days", type="float", min=0.0, max=3650.0),
    ),
)


@dataclass(frozen=True)
class _Published:
    registry: ModelRegistry
    net: nn.Module


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> _Published:
    """A registry holding one logistic iot_risk version (one real ONNX export)."""
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"))
    net = build_network("logistic", n_features=3, seed=0)
    set_flat(net, np.array([-2.0, 6.0, 0.02, -3.0]))
    registry.register(
        model=net,
        name="iot_risk",
        spec_name="iot_risk",
        schema=SCHEMA,
        n_features=3,
        mode="horizontal",
        participants={"factory-1": 10},
        rounds=1,
        strategy="FedAvg",
        privacy_mode="none",
    )
    return _Published(registry=registry, net=net)


def _input_csv(path: Path, *, rows: int = 40, with_label: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "subject_id": [f"91330100MA{i:08d}" for i in range(rows)],
            "utilisation": rng.uniform(0, 1, rows).round(4),
            "defect_rate": rng.uniform(0, 0.5, rows).round(4),
            "payment_delay_days": rng.uniform(0, 200, rows).round(1),
        }
    )
    if with_label:
        frame["default_12m"] = rng.integers(0, 2, rows)
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("with_label", [False, True])
def test_score_file_end_to_end(tmp_path: Path, published: _Published, with_label: bool) -> None:
    frame = _input_csv(tmp_path / "in.csv", with_label=with_label)

    summary = score_file(
        published.registry,
        model="iot_risk",
        version=None,
        input_path=tmp_path / "in.csv",
        output_path=tmp_path / "out" / "scores.csv",
    )

    out = pd.read_csv(tmp_path / "out" / "scores.csv", dtype={"id": str})
    features = frame[["utilisation", "defect_rate", "payment_delay_days"]].to_numpy(np.float32)
    expected = predict_proba(published.net, features)
    assert list(out.columns) == ["id", "score", "band"]
    assert out["id"].tolist() == frame["subject_id"].tolist()
    assert np.allclose(out["score"], expected, atol=2e-6)
    assert out["band"].tolist() == risk_bands(out["score"].to_numpy()).tolist()
    assert summary.version == "v1"
    assert summary.n_rows == 40
    assert sum(summary.band_counts.values()) == 40
    assert list(summary.band_counts) == ["A", "B", "C", "D", "E"]
    assert len(set(out["band"])) >= 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.csv"]


def test_missing_feature_column_names_the_column(tmp_path: Path, published: _Published) -> None:
    frame = _input_csv(tmp_path / "in.csv")
    frame.drop(columns=["defect_rate"]).to_csv(tmp_path / "in.csv", index=False)

    with pytest.raises(DataError, match="missing columns 'defect_rate'"):
        score_file(
            published.registry,
            model="iot_risk",
            version="v1",
            input_path=tmp_path / "in.csv",
            output_path=tmp_path / "out.csv",
        )

    assert not (tmp_path / "out.csv").exists()


def test_unknown_model_version_is_refused(tmp_path: Path, published: _Published) -> None:
    _input_csv(tmp_path / "in.csv")

    with pytest.raises(ModelNotFoundError, match="versions: v1"):
        score_file(
            published.registry,
            model="iot_risk",
            version="v2",
            input_path=tmp_path / "in.csv",
            output_path=tmp_path / "out.csv",
        )


def test_risk_band_cut_offs() -> None:
    probabilities = np.array([0.0, 0.0199, 0.02, 0.0499, 0.05, 0.0999, 0.1, 0.1999, 0.2, 1.0])

    bands = risk_bands(probabilities)

    assert bands.tolist() == ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]
    assert [band for band, _ in RISK_BANDS] == ["A", "B", "C", "D", "E"]
    assert [risk_band(float(p)) for p in probabilities] == bands.tolist()
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            risk_bands(np.array([bad]))
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            risk_band(bad)
