"""Network architectures for the risk models, all compatible with Opacus DP-SGD.

Every network maps a float32 feature matrix of shape ``(n, n_features)`` to one logit per
row, shape ``(n, 1)``; :func:`predict_proba` turns logits into default probabilities.
Only ``Linear`` and ``ReLU`` layers are used: they have per-sample gradient rules in Opacus
and no cross-sample state (BatchNorm mixes samples and breaks record-level DP).

Initialisation is drawn from a generator seeded by the caller, never from torch's global
random state, so every participant that builds a network from the same seed starts from
the same parameters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from .errors import did_you_mean

__all__ = [
    "NETWORK_KINDS",
    "LogisticNet",
    "MLPNet",
    "NetworkConfig",
    "build_network",
    "network_config",
    "predict_proba",
    "unwrap_module",
]

logger = logging.getLogger(__name__)

NetworkKind = Literal["logistic", "mlp"]

#: The architecture kinds :func:`build_network` knows.
NETWORK_KINDS: tuple[NetworkKind, ...] = ("logistic", "mlp")

_PREDICT_BATCH_ROWS = 65_536
#: Prediction batches hold at most this many activations (16 MB of float32) in their widest
#: layer: larger temporaries are mapped fresh from the OS on every call, and the page faults
#: cost more than the matrix products (measured on the 4 000-unit MLP of BENCHMARKS.md).
_PREDICT_BATCH_VALUES = 256 * 1024


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network's shape (the parameters travel separately)."""

    kind: NetworkKind
    n_features: int
    hidden: tuple[int, ...] = ()
    #: Fixed input standardisation ``(x - shift) / scale`` (empty: identity). It is part of
    #: the network (and of its ONNX graph) but not trained, so every party applies the same.
    feature_shift: tuple[float, ...] = ()
    feature_scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in NETWORK_KINDS:
            raise ValueError(
                f"unknown network kind {self.kind!r}{did_you_mean(self.kind, NETWORK_KINDS)}; "
                f"known kinds: {', '.join(NETWORK_KINDS)}"
            )
        if self.n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {self.n_features}")
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"hidden layer widths must be >= 1, got {list(self.hidden)}")
        if self.kind == "logistic" and self.hidden:
            raise ValueError(
                f"a logistic network has no hidden layers, got hidden={list(self.hidden)}"
            )
        if self.kind == "mlp" and not self.hidden:
            raise ValueError("an mlp network needs at least one hidden layer, got hidden=()")
        if len(self.feature_shift) != len(self.feature_scale) or (
            self.feature_shift and len(self.feature_shift) != self.n_features
        ):
            raise ValueError(
                f"feature_shift and feature_scale need {self.n_features} values each, got "
                f"{len(self.feature_shift)} and {len(self.feature_scale)}"
            )
        if any(not math.isfinite(v) for v in self.feature_shift) or any(
            not (math.isfinite(v) and v > 0) for v in self.feature_scale
        ):
            raise ValueError("feature_shift must be finite and feature_scale finite and > 0")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (used in model cards)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "n_features": self.n_features,
            "hidden": list(self.hidden),
        }
        if self.feature_shift:
            data["feature_shift"] = list(self.feature_shift)
            data["feature_scale"] = list(self.feature_scale)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=cast(NetworkKind, str(data["kind"])),
            n_features=int(data["n_features"]),
            hidden=tuple(int(width) for width in data.get("hidden", ())),
            feature_shift=tuple(float(v) for v in data.get("feature_shift", ())),
            feature_scale=tuple(float(v) for v in data.get("feature_scale", ())),
        )


class _Standardize(nn.Module):
    """``(x - shift) / scale`` with fixed buffers (no trainable parameters)."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.active = bool(config.feature_shift)
        shift = config.feature_shift or (0.0,) * config.n_features
        scale = config.feature_scale or (1.0,) * config.n_features
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return features
        return (features - self.shift) / self.scale


class LogisticNet(nn.Module):
    """Logistic regression: one affine map from the features to a logit."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.standardize = _Standardize(config)
        self.linear = nn.Linear(config.n_features, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(n, 1)``."""
        return cast(torch.Tensor, self.linear(self.standardize(features)))


class MLPNet(nn.Module):
    """A multilayer perceptron: ``Linear``+``ReLU`` blocks, then a ``Linear`` to a logit."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.standardize = _Standardize(config)
        layers: list[nn.Module] = []
        width_in = config.n_features
        for width in config.hidden:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(n, 1)``."""
        return cast(torch.Tensor, self.layers(self.standardize(features)))


def build_network(
    kind: str,
    *,
    n_features: int,
    hidden: Sequence[int] = (),
    seed: int,
    feature_shift: Sequence[float] = (),
    feature_scale: Sequence[float] = (),
) -> nn.Module:
    """Build a ``"logistic"`` or ``"mlp"`` network with initial weights drawn from ``seed``.

    Hidden layers get He-uniform weights (He et al. 2015, suited to ReLU) and zero biases;
    the output layer gets the uniform(±1/sqrt(fan_in)) weights that PyTorch's ``Linear``
    uses by default, and a zero bias. The same ``seed`` always gives the same parameters.
    ``feature_shift``/``feature_scale`` fix an input standardisation inside the network.
    """
    config = NetworkConfig(
        kind=cast(NetworkKind, kind),
        n_features=n_features,
        hidden=tuple(hidden),
        feature_shift=tuple(float(v) for v in feature_shift),
        feature_scale=tuple(float(v) for v in feature_scale),
    )
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws from the global RNG
        net: nn.Module = LogisticNet(config) if config.kind == "logistic" else MLPNet(config)
    generator = torch.Generator().manual_seed(seed)
    linears = [module for module in net.modules() if isinstance(module, nn.Linear)]
    with torch.no_grad():
        for index, linear in enumerate(linears):
            is_output = index == len(linears) - 1
            fan_in = linear.in_features
            bound = 1.0 / math.sqrt(fan_in) if is_output else math.sqrt(6.0 / fan_in)
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.zero_()
    logger.debug(
        "built %s network: %d features, hidden=%s, seed=%d",
        config.kind,
        config.n_features,
        list(config.hidden),
        seed,
    )
    return net


def unwrap_module(model: nn.Module) -> nn.Module:
    """The plain network inside wrappers such as Opacus' ``GradSampleModule``.

    Wrappers that keep the wrapped network in ``_module`` (Opacus does) are peeled off;
    a plain network is returned as is.
    """
    inner = model
    while isinstance(getattr(inner, "_module", None), nn.Module):
        inner = cast(nn.Module, inner._module)
    return inner


def network_config(model: nn.Module) -> NetworkConfig:
    """The :class:`NetworkConfig` of a network built here (wrapped or not)."""
    config = getattr(unwrap_module(model), "config", None)
    if not isinstance(config, NetworkConfig):
        raise TypeError(
            f"{type(unwrap_module(model)).__name__} was not built by build_network; "
            "it carries no NetworkConfig"
        )
    return config


def predict_proba(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """Default probabilities ``sigmoid(logit)`` for each row, as a float64 vector ``(n,)``.

    Runs in evaluation mode without gradients, in chunks so that large batches fit in
    memory; the model's previous train/eval mode is restored afterwards.
    """
    matrix = np.asarray(features, dtype=np.float32)
    if not matrix.flags.writeable:  # torch.from_numpy warns on read-only arrays
        matrix = matrix.copy()
    if matrix.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d), got shape {matrix.shape}")
    was_training = model.training
    model.eval()
    chunks: list[np.ndarray] = []
    widest = max((m.out_features for m in model.modules() if isinstance(m, nn.Linear)), default=1)
    rows = max(256, min(_PREDICT_BATCH_ROWS, _PREDICT_BATCH_VALUES // max(1, widest)))
    try:
        with torch.no_grad():
            for start in range(0, matrix.shape[0], rows):
                batch = torch.from_numpy(matrix[start : start + rows])
                chunks.append(torch.sigmoid(model(batch)).reshape(-1).double().numpy())
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate(chunks)
