"""The fixed input standardisation travels inside the network, its ONNX graph and registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.nets import build_network, predict_proba
from models.onnx_export import OnnxModel, export_onnx
from models.parameters import to_arrays
from models.schema import FeatureSpec, TabularSchema
from models.standardization import standardization_from
from models.tabular import TabularData


def _data(rows: int = 500) -> TabularData:
    rng = np.random.default_rng(0)
    features = np.column_stack(
        [rng.normal(5_000, 800, rows), rng.normal(0.5, 0.1, rows), np.full(rows, 3.0)]
    ).astype(np.float32)
    schema = TabularSchema(
        id="id", label="y", features=tuple(FeatureSpec(f"f{i}", "float") for i in range(3))
    )
    return TabularData(
        ids=np.array([str(i) for i in range(rows)]),
        features=features,
        labels=(rng.random(rows) < 0.3).astype(np.float32),
        source="memory",
        schema=schema,
    )


def test_statistics_are_mean_and_std_with_constant_features_left_unscaled() -> None:
    norm = standardization_from(_data())

    assert norm.shift[0] == pytest.approx(5_000, rel=0.05)
    assert norm.scale[0] == pytest.approx(800, rel=0.1)
    assert norm.scale[2] == 1.0


def test_identity_without_data() -> None:
    assert standardization_from(None).shift == ()


def test_network_standardises_its_input_without_new_trainable_parameters(tmp_path: Path) -> None:
    data = _data()
    norm = standardization_from(data)
    plain = build_network("mlp", n_features=3, hidden=(8,), seed=1)
    scaled = build_network(
        "mlp",
        n_features=3,
        hidden=(8,),
        seed=1,
        feature_shift=norm.shift,
        feature_scale=norm.scale,
    )
    standardised = (data.features - np.array(norm.shift)) / np.array(norm.scale)

    assert [a.shape for a in to_arrays(plain)] == [a.shape for a in to_arrays(scaled)]
    np.testing.assert_allclose(
        predict_proba(scaled, data.features),
        predict_proba(plain, standardised.astype(np.float32)),
        atol=1e-6,
    )
    onnx_path = export_onnx(scaled, n_features=3, path=tmp_path / "m.onnx")
    np.testing.assert_allclose(
        OnnxModel(onnx_path).predict(data.features),
        predict_proba(scaled, data.features),
        atol=1e-5,
    )


def test_bad_standardisation_is_refused() -> None:
    with pytest.raises(ValueError, match="feature_scale"):
        build_network("logistic", n_features=2, seed=0, feature_shift=(0, 0), feature_scale=(1, 0))
    with pytest.raises(ValueError, match="2 values"):
        build_network("logistic", n_features=2, seed=0, feature_shift=(0,), feature_scale=(1,))
    assert torch.is_tensor(build_network("logistic", n_features=2, seed=0).standardize.shift)
