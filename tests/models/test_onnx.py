"""ONNX export and the ONNX Runtime wrapper (models/onnx_export.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from opacus import GradSampleModule
from torch import nn

from models.errors import ExportError
from models.nets import build_network
from models.onnx_export import INPUT_NAME, OUTPUT_NAME, OnnxModel, export_onnx

N_FEATURES = 6
PARITY_ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Iterator[None]:
    """Tracing tiny graphs gains nothing from intra-op threads and loses on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(kind: str, seed: int = 0) -> nn.Module:
    hidden = (16, 8) if kind == "mlp" else ()
    return build_network(kind, n_features=N_FEATURES, hidden=hidden, seed=seed)


def _torch_scores(net: nn.Module, x: np.ndarray, *, probability: bool = True) -> np.ndarray:
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(x))
    return (torch.sigmoid(logits) if probability else logits).numpy().reshape(-1)


@dataclass(frozen=True)
class _Exported:
    net: nn.Module
    path: Path
    model: OnnxModel


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, _Exported]:
    """One export per kind, shared: each dynamo export takes about a second."""
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for kind in ("logistic", "mlp"):
        net = _net(kind)
        path = export_onnx(net, n_features=N_FEATURES, path=root / f"{kind}.onnx")
        out[kind] = _Exported(net=net, path=path, model=OnnxModel(path))
    return out


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_onnx_runtime_matches_pytorch_for_batch_1_and_10000(
    kind: str, exported: dict[str, _Exported]
) -> None:
    net, model = exported[kind].net, exported[kind].model
    rng = np.random.default_rng(42)

    for rows in (1, 10_000):
        x = rng.normal(scale=2.0, size=(rows, N_FEATURES)).astype(np.float32)
        scores = model.predict(x)
        assert scores.dtype == np.float32
        assert scores.shape == (rows,)
        assert np.max(np.abs(scores - _torch_scores(net, x))) <= PARITY_ATOL


def test_graph_has_named_io_dynamic_batch_and_opset_17_or_later(
    exported: dict[str, _Exported],
) -> None:
    graph = onnx.load(exported["mlp"].path)

    assert [i.name for i in graph.graph.input] == [INPUT_NAME]
    assert [o.name for o in graph.graph.output] == [OUTPUT_NAME]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value
    assert dims[1].dim_value == N_FEATURES
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_export_is_deterministic_and_unwraps_opacus(
    tmp_path: Path, exported: dict[str, _Exported]
) -> None:
    wrapped = GradSampleModule(_net("logistic"))

    again = export_onnx(wrapped, n_features=N_FEATURES, path=tmp_path / "again.onnx")

    assert again.read_bytes() == exported["logistic"].path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.onnx"]


def test_logit_output_matches_the_network_logit(tmp_path: Path) -> None:
    net = _net("mlp", seed=1)
    x = np.random.default_rng(0).normal(size=(50, N_FEATURES)).astype(np.float32)

    model = OnnxModel(
        export_onnx(net, n_features=N_FEATURES, path=tmp_path / "l.onnx", output="logit")
    )

    assert model.output_kind == "logit"
    assert np.max(np.abs(model.predict(x) - _torch_scores(net, x, probability=False))) <= 1e-5


def test_predict_refuses_wrong_column_count(exported: dict[str, _Exported]) -> None:
    with pytest.raises(ValueError, match=r"shape \(n, 6\).*got \(3, 5\)"):
        exported["logistic"].model.predict(np.zeros((3, 5), dtype=np.float32))


def test_loading_a_file_that_is_not_onnx_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")

    with pytest.raises(ExportError, match="cannot load ONNX model"):
        OnnxModel(bogus)
