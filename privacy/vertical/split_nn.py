"""Split neural network with differential privacy at the cut layer.

Split learning (Vepakomma et al. 2018, "Split learning for health"): every party runs a
*bottom* network on its own features; the label holder (guest) runs the *top* network on
the concatenated cut-layer activations and owns the loss. Only two things cross a party
boundary, and both are clipped per row to an L2 norm and Gaussian-noised (the Gaussian
mechanism, Dwork & Roth 2014):

- host → guest: the host's cut-layer activations of the batch's rows (protects the host's
  features: ``activation_dp``);
- guest → host: each row's gradient of its own loss term with respect to those activations
  (protects the guest's labels: ``gradient_dp``). It is released per row, independent of
  the batch size, so the clip norm means the same at any batch size; the host divides by
  the batch size when it applies the gradient (the gradient of the batch's mean loss).

Batches are Poisson samples (each row independently with probability q), so each release
is a subsampled Gaussian mechanism and composes as a :class:`~privacy.dp.events.DPEvent`
(sigma, q, steps), accounted like DP-SGD. Scope of the guarantee, stated plainly: it bounds what
the *released* activations and gradients reveal about the rows of each batch given the
current networks; the networks themselves are trained on each party's own data without
DP-SGD, so a party's later releases also depend on its earlier rows through its weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..dp.events import DPEvent
from ..errors import InvalidParametersError

__all__ = [
    "CutLayerDP",
    "SplitNNConfig",
    "SplitNNGuest",
    "SplitNNHost",
    "epoch_batches",
    "poisson_batches",
    "run_split_epoch",
]


@dataclass(frozen=True)
class CutLayerDP:
    """Per-row L2 clipping to ``clip_norm`` and Gaussian noise of sd = multiplier * clip."""

    clip_norm: float = 1.0
    noise_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not self.clip_norm > 0:
            raise InvalidParametersError(f"clip_norm must be > 0, got {self.clip_norm}")
        if not self.noise_multiplier > 0:
            raise InvalidParametersError(
                f"noise_multiplier must be > 0, got {self.noise_multiplier}"
            )

    def clip(self, values: np.ndarray) -> np.ndarray:
        """Each row scaled down to L2 norm ``clip_norm`` if it is longer."""
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        return values * np.minimum(1.0, self.clip_norm / np.maximum(norms, 1e-12))

    def apply(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clip, then add Gaussian noise of sd ``noise_multiplier * clip_norm``."""
        sigma = self.noise_multiplier * self.clip_norm
        return self.clip(values) + rng.normal(0.0, sigma, size=values.shape)


@dataclass(frozen=True)
class SplitNNConfig:
    """Shapes, optimiser and privacy of a split network (shared by all parties)."""

    cut_width: int = 8
    bottom_hidden: tuple[int, ...] = (32,)
    top_hidden: tuple[int, ...] = (16,)
    learning_rate: float = 0.01
    #: Expected rows per batch; the Poisson rate is this over the aligned row count.
    batch_rows: int = 256
    activation_dp: CutLayerDP | None = field(default_factory=CutLayerDP)
    gradient_dp: CutLayerDP | None = field(default_factory=CutLayerDP)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cut_width < 1 or self.batch_rows < 1:
            raise InvalidParametersError("cut_width and batch_rows must be >= 1")
        if not self.learning_rate > 0:
            raise InvalidParametersError(f"learning_rate must be > 0, got {self.learning_rate}")


def _mlp(inputs: int, hidden: Sequence[int], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


def poisson_batches(
    rows: int, *, rate: float, steps: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``steps`` batches, each row in each batch independently with probability ``rate``."""
    return [np.flatnonzero(rng.random(rows) < rate) for _ in range(steps)]


def epoch_batches(rows: int, config: SplitNNConfig, *, epoch: int) -> list[np.ndarray]:
    """The Poisson batches of one epoch (≈ rows / batch_rows of them), the same at every
    party: they derive from the shared seed and the epoch number only."""
    steps = max(1, math.ceil(rows / config.batch_rows))
    rate = min(1.0, config.batch_rows / rows)
    rng = np.random.default_rng([config.seed, 7, epoch])
    return poisson_batches(rows, rate=rate, steps=steps, rng=rng)


class _Bottom:
    def __init__(self, features: np.ndarray, config: SplitNNConfig, *, salt: int) -> None:
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2 or 0 in matrix.shape or not np.all(np.isfinite(matrix)):
            raise InvalidParametersError("features must be a finite, non-empty 2-D array")
        self.config = config
        self.mean = matrix.mean(axis=0)
        self.scale = np.where(matrix.std(axis=0) > 0, matrix.std(axis=0), 1.0)
        self._x = torch.from_numpy(self._standardise(matrix)).float()
        torch.manual_seed(config.seed * 1_000 + salt)
        self.bottom = _mlp(matrix.shape[1], config.bottom_hidden, config.cut_width)
        self.optimizer = torch.optim.Adam(self.bottom.parameters(), lr=config.learning_rate)
        self.rng = np.random.default_rng([config.seed, salt])

    def _standardise(self, matrix: np.ndarray) -> np.ndarray:
        return (np.asarray(matrix, dtype=np.float64) - self.mean) / self.scale

    @property
    def rows(self) -> int:
        return int(self._x.shape[0])

    def state(self) -> dict[str, object]:
        """What a party must keep between messages: networks, optimiser, noise RNG."""
        return {
            "bottom": self.bottom.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def restore(self, state: dict[str, object]) -> None:
        """Continue from :meth:`state` of a party built on the same rows and config."""
        self.bottom.load_state_dict(state["bottom"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]  # type: ignore[assignment]

    def cut(self, features: np.ndarray) -> np.ndarray:
        """Cut-layer activations of new rows (serving: this party's part)."""
        with torch.no_grad():
            x = torch.from_numpy(self._standardise(features)).float()
            return self.bottom(x).numpy().astype(np.float64)


class SplitNNHost(_Bottom):
    """A feature holder: releases noised activations, applies noised gradients."""

    def __init__(self, features: np.ndarray, *, config: SplitNNConfig, index: int = 1) -> None:
        super().__init__(features, config, salt=index)
        self._pending: torch.Tensor | None = None

    @property
    def clip_norm(self) -> float | None:
        """The clip applied to every activation this host releases (None: not clipped)."""
        dp = self.config.activation_dp
        return None if dp is None else dp.clip_norm

    def cut(self, features: np.ndarray) -> np.ndarray:
        """Activations of new rows, clipped as in training but not noised (evaluation and
        serving: the top network was trained on clipped activations)."""
        values = super().cut(features)
        dp = self.config.activation_dp
        return values if dp is None else dp.clip(values)

    def forward(self, rows: np.ndarray) -> np.ndarray:
        self.optimizer.zero_grad()
        self._pending = self.bottom(self._x[rows])
        released = self._pending.detach().numpy().astype(np.float64)
        dp = self.config.activation_dp
        return dp.apply(released, self.rng) if dp is not None else released

    def recompute(self, rows: np.ndarray) -> None:
        """Rebuild the forward pass of ``rows`` (a new process, same weights) for
        :meth:`backward`; deterministic, so it equals the pass whose output was released."""
        self.optimizer.zero_grad()
        self._pending = self.bottom(self._x[rows])

    def backward(self, gradient: np.ndarray) -> None:
        if self._pending is None:
            raise InvalidParametersError("backward() without a forward() of the same batch")
        if self._pending.shape[0] == 0:  # an empty Poisson batch: nothing to learn
            self._pending = None
            return
        grad = torch.from_numpy(np.asarray(gradient, dtype=np.float32))
        if grad.shape != self._pending.shape:
            raise InvalidParametersError(
                f"gradient of shape {tuple(grad.shape)} for activations "
                f"{tuple(self._pending.shape)}"
            )
        self._pending.backward(grad / self._pending.shape[0])
        self.optimizer.step()
        self._pending = None


class SplitNNGuest(_Bottom):
    """The label holder: its bottom network, the top network and the loss."""

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, *, config: SplitNNConfig, hosts: int
    ) -> None:
        super().__init__(features, config, salt=0)
        y = np.asarray(labels, dtype=np.float32).reshape(-1)
        if y.shape[0] != self.rows or not np.all((y == 0) | (y == 1)):
            raise InvalidParametersError("labels must be 0/1, one per row of the features")
        self._y = torch.from_numpy(y)
        self.top = _mlp(config.cut_width * (1 + hosts), config.top_hidden, 1)
        self.optimizer = torch.optim.Adam(
            [*self.bottom.parameters(), *self.top.parameters()], lr=config.learning_rate
        )
        self.hosts = hosts
        self.steps = 0

    def step(self, rows: np.ndarray, host_activations: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One batch: top and own bottom updated; the (noised) gradient for each host."""
        if len(host_activations) != self.hosts:
            raise InvalidParametersError(f"expected {self.hosts} host activations")
        for number, a in enumerate(host_activations):
            if np.shape(a) != (rows.size, self.config.cut_width):
                raise InvalidParametersError(
                    f"host {number} sent activations of shape {np.shape(a)}, expected "
                    f"({rows.size}, {self.config.cut_width})"
                )
            if not np.all(np.isfinite(a)):
                raise InvalidParametersError(f"host {number} sent non-finite activations")
        if rows.size == 0:  # an empty Poisson batch still counts as a step of the mechanism
            self.steps += 1
            return [np.zeros((0, self.config.cut_width)) for _ in host_activations]
        self.optimizer.zero_grad()
        received = [
            torch.tensor(np.asarray(a, dtype=np.float32), requires_grad=True)
            for a in host_activations
        ]
        z = self.top(torch.cat([self.bottom(self._x[rows]), *received], dim=1)).reshape(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(z, self._y[rows], reduction="sum")
        (loss / max(1, rows.size)).backward()
        self.optimizer.step()
        self.steps += 1
        dp = self.config.gradient_dp
        # d(mean loss)/da times the batch size: each row's gradient of its own loss term.
        grads = [r.grad.numpy().astype(np.float64) * rows.size for r in received]  # type: ignore[union-attr]
        return [dp.apply(g, self.rng) if dp is not None else g for g in grads]

    def state(self) -> dict[str, object]:
        return {**super().state(), "top": self.top.state_dict(), "steps": self.steps}

    def restore(self, state: dict[str, object]) -> None:
        self.top.load_state_dict(state["top"])  # type: ignore[arg-type]
        super().restore(state)
        self.steps = int(state["steps"])  # type: ignore[call-overload]

    def logits(self, features: np.ndarray, host_parts: Sequence[np.ndarray]) -> np.ndarray:
        """Joint logits of new rows from this party's features and the hosts' cut parts."""
        with torch.no_grad():
            own = self.bottom(torch.from_numpy(self._standardise(features)).float())
            parts = [torch.from_numpy(np.asarray(p, dtype=np.float32)) for p in host_parts]
            return self.top(torch.cat([own, *parts], dim=1)).reshape(-1).numpy().astype(np.float64)

    def dp_events(self) -> dict[str, DPEvent]:
        """What the releases cost so far: ``activations`` (hosts' rows), ``gradients``
        (labels); absent when that release is not noised."""
        rate = min(1.0, self.config.batch_rows / self.rows)
        out = {}
        for name, dp in (("activations", self.config.activation_dp),
                         ("gradients", self.config.gradient_dp)):  # fmt: skip
            if dp is not None and self.steps:
                out[name] = DPEvent(dp.noise_multiplier, rate, self.steps)
        return out


def run_split_epoch(guest: SplitNNGuest, hosts: Sequence[SplitNNHost], *, epoch: int) -> int:
    """One epoch (≈ rows / batch_rows Poisson batches) with every party in this process."""
    if any(h.rows != guest.rows for h in hosts):
        raise InvalidParametersError("every host must hold the guest's aligned rows")
    batches = epoch_batches(guest.rows, guest.config, epoch=epoch)
    for rows in batches:
        gradients = guest.step(rows, [h.forward(rows) for h in hosts])
        for host, gradient in zip(hosts, gradients, strict=True):
            host.backward(gradient)
    return len(batches)
