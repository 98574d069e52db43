"""Vertical logistic regression, FATE-style: one guest (labels + features), one or more hosts.

Each party keeps its own weights over its own (locally standardised) features. Per batch,
in rows aligned by private set intersection:

1. each host sends its partial logits ``u_k = X_k w_k`` (optionally with Gaussian noise);
2. the guest forms ``z = X_g w_g + b + Σ u_k`` and the residual of the second-order Taylor
   expansion of the logistic loss at 0 (Hardy et al. 2017, FATE): ``d = z/4 + 1/2 - y``;
   it updates its own weights from ``d`` and sends ``Enc(d)`` to every host;
3. each host computes, under encryption, ``d_i · x_ij + r_ij`` for every row and column,
   with fresh uniform masks ``r`` (:mod:`privacy.vertical.codecs`);
4. the guest decrypts and sums each column (optionally adding Gaussian noise for label
   privacy) and returns the masked sums; the host subtracts its mask totals and steps.

What each party learns: the guest learns the hosts' partial logits ``u_k`` (a linear score,
never features, never weights, never unmasked gradients) and masked sums; a host learns its
own gradient (which depends on the labels: add ``label_noise_multiplier`` to bound that with
differential privacy), never labels or residuals in the clear; the coordinator relays
ciphertexts, masked values and partial logits and holds no secret key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dp.events import DPEvent
from ..errors import InvalidParametersError
from .codecs import GuestCodec, HostCodec, MaskedColumns

__all__ = [
    "BatchPlan",
    "VerticalLRConfig",
    "VerticalLRGuest",
    "VerticalLRHost",
    "batch_plan",
    "holdout_split",
    "run_epoch",
]


@dataclass(frozen=True)
class VerticalLRConfig:
    """Training settings both sides agree on (sent with the batch plan)."""

    learning_rate: float = 0.15
    l2: float = 1e-4
    batch_rows: int = 1024
    #: Host features are clipped to this L2 norm per row before use (bounds a gradient).
    feature_clip_norm: float = 8.0
    #: Gaussian noise on the released column sums, in units of their sensitivity (None: off).
    label_noise_multiplier: float | None = None

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise InvalidParametersError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.l2 < 0:
            raise InvalidParametersError(f"l2 must be >= 0, got {self.l2}")
        if self.batch_rows < 1:
            raise InvalidParametersError(f"batch_rows must be >= 1, got {self.batch_rows}")
        if not self.feature_clip_norm > 0:
            raise InvalidParametersError(
                f"feature_clip_norm must be > 0, got {self.feature_clip_norm}"
            )
        sigma = self.label_noise_multiplier
        if sigma is not None and not sigma > 0:
            raise InvalidParametersError(f"label_noise_multiplier must be > 0, got {sigma}")


@dataclass(frozen=True)
class BatchPlan:
    """The rows of each batch of one epoch (positions in the PSI-aligned order)."""

    epoch: int
    batches: tuple[np.ndarray, ...]


def batch_plan(n_rows: int, *, batch_rows: int, epoch: int, seed: int) -> BatchPlan:
    """A seeded shuffle of ``range(n_rows)`` cut into batches (disjoint, covering all rows)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    return BatchPlan(epoch, tuple(np.array_split(order, max(1, math.ceil(n_rows / batch_rows)))))


def holdout_split(n_rows: int, *, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and holdout positions of the aligned rows (the same on every side)."""
    if not 0 <= holdout < 1:
        raise InvalidParametersError(f"holdout must be in [0, 1), got {holdout}")
    order = np.random.default_rng([seed, 17]).permutation(n_rows)
    n_test = round(n_rows * holdout)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def standardise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales of a party's own features (zero-variance columns: scale 1)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


class _Party:
    def __init__(self, features: np.ndarray, config: VerticalLRConfig) -> None:
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
            raise InvalidParametersError(
                f"features must be a non-empty 2-D array, got {matrix.shape}"
            )
        if not np.all(np.isfinite(matrix)):
            raise InvalidParametersError("features must be finite")
        self.config = config
        self.mean, self.scale = standardise(matrix)
        self._x = self.prepare(matrix)
        self.weights = np.zeros(matrix.shape[1])

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Own features, standardised with the training statistics and clipped per row."""
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        limit = self.config.feature_clip_norm
        return x * np.minimum(1.0, limit / np.maximum(norms, 1e-12))

    @property
    def rows(self) -> int:
        return int(self._x.shape[0])


class VerticalLRHost(_Party):
    """A feature holder: partial logits out, masked encrypted products, own weights."""

    def __init__(self, features: np.ndarray, *, codec: HostCodec, config: VerticalLRConfig) -> None:
        super().__init__(features, config)
        self.codec = codec
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def partial_logits(self, rows: np.ndarray) -> np.ndarray:
        return self._x[rows] @ self.weights

    def answer(self, rows: np.ndarray, residuals: bytes) -> MaskedColumns:
        """Step 3: masked products of the batch's columns; the mask totals stay here."""
        return self.codec.masked_columns(residuals, self._x[rows])

    def apply_masked(
        self, rows: np.ndarray, masked_sums: np.ndarray, mask_totals: np.ndarray
    ) -> None:
        """Step 5: unmask the guest's column sums and take a gradient step."""
        sums = np.asarray(masked_sums, dtype=np.float64)
        if sums.shape != self.weights.shape or not np.all(np.isfinite(sums)):
            raise InvalidParametersError(
                f"expected {self.weights.size} finite column sums, got shape {sums.shape}"
            )
        gradient = (sums - mask_totals) / rows.size
        self.weights -= self.config.learning_rate * (gradient + self.config.l2 * self.weights)

    def masked_products(self, step: int, rows: np.ndarray, residuals: bytes) -> bytes:
        answer = self.answer(rows, residuals)
        self._pending[step] = (rows, answer.mask_totals)
        return answer.payload

    def apply(self, step: int, masked_sums: np.ndarray) -> None:
        rows, totals = self._pending.pop(step)
        self.apply_masked(rows, masked_sums, totals)

    def score_part(self, features: np.ndarray) -> np.ndarray:
        """Partial logits for new rows of this host (serving: the host's ONNX part)."""
        return self.prepare(features) @ self.weights


class VerticalLRGuest(_Party):
    """The label holder: residuals, its own weights and bias, the hosts' masked sums."""

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        *,
        codec: GuestCodec,
        config: VerticalLRConfig,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(features, config)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if y.shape[0] != self.rows or not np.all((y == 0) | (y == 1)):
            raise InvalidParametersError("labels must be 0/1, one per row of the features")
        self._y = y
        self.codec = codec
        self.bias = 0.0
        self.released_sums = 0
        self._rng = rng or np.random.default_rng()

    def residuals(self, rows: np.ndarray, host_logits: Sequence[np.ndarray]) -> bytes:
        """Step 2: update the guest's own weights and encrypt the batch's residuals."""
        z = self._x[rows] @ self.weights + self.bias + sum(host_logits, np.zeros(rows.size))
        d = z / 4.0 + 0.5 - self._y[rows]
        gradient = self._x[rows].T @ d / rows.size
        self.weights -= self.config.learning_rate * (gradient + self.config.l2 * self.weights)
        self.bias -= self.config.learning_rate * float(d.mean())
        return self.codec.encrypt_residuals(d)

    def open_sums(self, rows: np.ndarray, payload: bytes, *, columns: int) -> np.ndarray:
        """Step 4: decrypt and sum the host's masked columns; label noise if configured."""
        sums = self.codec.open_column_sums(payload, rows=rows.size, columns=columns)
        sigma = self.config.label_noise_multiplier
        if sigma is not None:
            # One label flip moves d_i by 1 (|Δ(z/4 + 1/2 - y)| = 1): sensitivity = clip norm.
            sums = sums + self._rng.normal(0.0, sigma * self.config.feature_clip_norm, columns)
        self.released_sums += 1
        return sums

    def logits(self, features: np.ndarray, host_parts: Sequence[np.ndarray]) -> np.ndarray:
        """Joint logits of new rows: the guest's part plus every host's partial logits."""
        return self.prepare(features) @ self.weights + self.bias + sum(host_parts, 0.0)

    def label_dp_event(self, epochs: int) -> DPEvent | None:
        """The Gaussian mechanism on the released sums, composed over ``epochs``.

        Batches of an epoch are disjoint, so within an epoch each label enters one release
        per host (parallel composition): one event at sample rate 1 per epoch and host.
        """
        sigma = self.config.label_noise_multiplier
        if sigma is None:
            return None
        return DPEvent(noise_multiplier=sigma, sample_rate=1.0, steps=max(1, epochs))


def run_epoch(
    guest: VerticalLRGuest, hosts: Sequence[VerticalLRHost], *, epoch: int, seed: int
) -> int:
    """One epoch of the protocol with every party in this process; returns the steps run.

    The federated runtime relays the same calls as messages; this is what tests and the
    benchmarks of the protocol's cryptography use.
    """
    if any(h.rows != guest.rows for h in hosts):
        raise InvalidParametersError("every host must hold the guest's aligned rows")
    plan = batch_plan(guest.rows, batch_rows=guest.config.batch_rows, epoch=epoch, seed=seed)
    for step, rows in enumerate(plan.batches):
        residuals = guest.residuals(rows, [h.partial_logits(rows) for h in hosts])
        for host in hosts:
            payload = host.masked_products(step, rows, residuals)
            host.apply(step, guest.open_sums(rows, payload, columns=host.weights.size))
    return len(plan.batches)
