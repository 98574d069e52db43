"""ONNX export of the risk networks, and a small ONNX Runtime wrapper for serving.

A published model version is served as ONNX graphs (DESIGN.md, Serving). The graph takes
one float32 input ``features`` of shape ``(batch, n_features)`` with a dynamic batch axis
and returns ``score`` of shape ``(batch, 1)``: the default probability, or the raw logit
for graphs that a vertical combiner adds up before the sigmoid.

Exporter: ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based exporter
that is PyTorch's default since 2.9 (it needs ``onnxscript``). The TorchScript exporter
(``dynamo=False``) also works with torch 2.13 and is far faster (milliseconds against
about a second per export, plus a few seconds' warm-up on the first), but it is deprecated
and slated for removal; export happens once per published version, so speed does not
decide it. For given parameters the dynamo exporter writes the same bytes on every run
(checked across processes), so the ``onnx_sha256`` in a model card identifies them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast

import numpy as np
import onnx
import torch
from torch import nn

from .errors import ExportError
from .nets import build_network, network_config, unwrap_module
from .ort_sessions import cpu_session

__all__ = [
    "INPUT_NAME",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "OnnxModel",
    "OutputKind",
    "export_onnx",
]

logger = logging.getLogger(__name__)

OutputKind = Literal["logit", "probability"]

#: Name of the graph's input tensor.
INPUT_NAME = "features"
#: Name of the graph's output tensor.
OUTPUT_NAME = "score"
#: ONNX opset of exported graphs (ONNX Runtime 1.20+ runs it).
ONNX_OPSET = 18
#: Metadata key recording whether ``score`` is a logit or a probability.
OUTPUT_KIND_KEY = "fedrisk.output"

_EXAMPLE_BATCH_ROWS = 2


class _Scored(nn.Module):
    """The network followed by a sigmoid, or alone, as the exported graph's body."""

    def __init__(self, net: nn.Module, *, output: OutputKind) -> None:
        super().__init__()
        self.net = net
        self.output = output

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = cast(torch.Tensor, self.net(features))
        return torch.sigmoid(logits) if self.output == "probability" else logits


def export_onnx(
    model: nn.Module,
    *,
    n_features: int,
    path: Path,
    output: OutputKind = "probability",
) -> Path:
    """Write ``model`` as an ONNX graph to ``path`` and return ``path``.

    Opacus wrappers are removed first, and a network from ``build_network`` is traced
    from a hook-free copy. The file appears atomically (written beside ``path`` then
    renamed). Raises :class:`ExportError` if the exporter fails or the graph
    does not pass ``onnx.checker``.
    """
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    if output not in ("logit", "probability"):
        raise ValueError(f"output must be 'logit' or 'probability', got {output!r}")
    net = _export_copy(model, n_features=n_features)
    was_training = net.training
    wrapper = _Scored(net, output=output).eval()
    example = torch.zeros(_EXAMPLE_BATCH_ROWS, n_features, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=ONNX_OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        if program is None:
            raise ExportError("torch.onnx.export returned no program")
        proto = program.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = OUTPUT_KIND_KEY, output
        onnx.checker.check_model(proto)
        onnx.save_model(proto, partial)
        os.replace(partial, path)
    except ExportError:
        raise
    except Exception as exc:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export of {type(net).__name__} failed: {exc}") from exc
    finally:
        net.train(was_training)
        partial.unlink(missing_ok=True)
    logger.info(
        "exported %s (%s output, %d features) to %s", type(net).__name__, output, n_features, path
    )
    return path


def _export_copy(model: nn.Module, *, n_features: int) -> nn.Module:
    """The network to trace: a fresh, hook-free copy when it was built by ``build_network``.

    Opacus leaves per-sample-gradient hooks on the layers it wraps; tracing through them
    changes the graph (not its values), so a network of ours is rebuilt from its config
    and weights: the same parameters always give the same ONNX bytes.
    """
    net = unwrap_module(model)
    try:
        config = network_config(net)
    except TypeError:
        return net
    if config.n_features != n_features:
        raise ValueError(f"n_features={n_features} but the network takes {config.n_features}")
    clean = build_network(
        config.kind,
        n_features=config.n_features,
        hidden=config.hidden,
        seed=0,
        feature_shift=config.feature_shift,
        feature_scale=config.feature_scale,
    )
    clean.load_state_dict(net.state_dict())
    return clean


class OnnxModel:
    """An exported risk model loaded in ONNX Runtime on the CPU."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        self.path = path
        try:
            self._session = cpu_session(str(path), threads=threads)
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise ExportError(f"cannot load ONNX model {path}: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            names = [item.name for item in inputs]
            raise ExportError(f"{path}: expected one input named {INPUT_NAME!r}, got {names}")
        width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
        if not isinstance(width, int):
            raise ExportError(f"{path}: input {INPUT_NAME!r} has no fixed column count")
        self.n_features: int = width
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.output_kind: str = metadata.get(OUTPUT_KIND_KEY, "probability")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for each row as a float32 vector ``(n,)``.

        ``features`` must be 2-D with exactly :attr:`n_features` columns, in the order of
        the model's schema.
        """
        matrix = np.asarray(features)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(
                f"features must have shape (n, {self.n_features}) for model {self.path.name}, "
                f"got {matrix.shape}"
            )
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.ascontiguousarray(matrix, dtype=np.float32)
        (scores,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(scores, dtype=np.float32).reshape(-1)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's registry chatter (e.g. "torchvision is not installed")."""
    chatty = logging.getLogger("torch.onnx")
    level = chatty.level
    chatty.setLevel(logging.ERROR)
    try:
        yield
    finally:
        chatty.setLevel(level)
