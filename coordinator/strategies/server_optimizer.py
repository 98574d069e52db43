"""Adaptive server optimisers (Reddi et al. 2021, "Adaptive Federated Optimization"):
FedAdam and FedYogi, with Flower's own implementations of the server step.

The wrapped strategy averages the round's updates as usual (in plain, or under CKKS, summed
as ciphertexts); the difference between that average and the round's global model is a
pseudo-gradient, which Flower's ``FedAdam`` / ``FedYogi`` turn into the next global model
with per-coordinate adaptive step sizes. That makes progress on skewed participants, where
plain averaging crawls (BENCHMARKS.md, ``skewed_splits``).

Under CKKS the server step needs the aggregate in plain every round, so each round's sum is
opened by a key holder right away (one extra message round trip) instead of travelling
encrypted with the next train message; the coordinator learns nothing more than it would
a round later (the aggregate model, which it evaluates anyway), and individual updates stay
encrypted. Aggregation is post-processing of DP-SGD updates: no privacy is spent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedYogi

from models import wire

from .base import Aggregate, RoundContext, Strategy
from .encrypted_aggregation import EncryptedAggregation

Optimizer = Literal["fedadam", "fedyogi"]
_FLOWER = {"fedadam": FedAdam, "fedyogi": FedYogi}


class ServerOptimizer:
    """Wraps an averaging strategy: its average becomes one adaptive server step."""

    def __init__(
        self,
        inner: Strategy,
        *,
        optimizer: Optimizer,
        learning_rate: float,
        beta_1: float,
        beta_2: float,
        tau: float,
    ) -> None:
        if optimizer not in _FLOWER:
            raise ValueError(f"optimizer must be one of {', '.join(_FLOWER)}, got {optimizer!r}")
        if not learning_rate > 0 or not tau > 0:
            raise ValueError(f"learning_rate and tau must be > 0, got {learning_rate}, {tau}")
        self.inner = inner
        self.optimizer = optimizer
        # Flower's strategy object holds the optimiser's moments (m_t, v_t) across rounds.
        self._flower = _FLOWER[optimizer](eta=learning_rate, beta_1=beta_1, beta_2=beta_2, tau=tau)
        self.name = inner.name.removesuffix("fedavg") + optimizer

    def configure_train(self, config: ConfigRecord) -> ConfigRecord:
        return self.inner.configure_train(config)

    def aggregate_train(
        self, replies: Iterable[Message], *, ctx: RoundContext, grid: Grid
    ) -> Aggregate:
        aggregate = self.inner.aggregate_train(replies, ctx=ctx, grid=grid)
        if aggregate.encrypted is not None:
            aggregate = self._opened(aggregate, grid=grid, ctx=ctx)
        if aggregate.arrays is None:
            return aggregate  # a failed round leaves the optimiser's state as it was
        if len(ctx.global_arrays) != len(aggregate.arrays):
            raise ValueError("the round context carries no global model to step from")
        stepped = self.step(
            list(ctx.global_arrays), aggregate.arrays, server_round=ctx.server_round
        )
        return replace(aggregate, arrays=stepped)

    def step(
        self, current: list[np.ndarray], averaged: list[np.ndarray], *, server_round: int
    ) -> list[np.ndarray]:
        """The next global model: Flower's server step from ``current`` towards ``averaged``."""
        self._flower.current_arrays = {
            key: array.numpy() for key, array in ArrayRecord(current).items()
        }
        # Flower's strategies read replies; the round's average is the one reply they see.
        reply = Message(
            RecordDict(
                {
                    "arrays": ArrayRecord([np.asarray(a) for a in averaged]),
                    "metrics": MetricRecord({"num-examples": 1}),
                }
            ),
            dst_node_id=0,
            message_type=wire.TRAIN,
        )
        stepped, _ = self._flower.aggregate_train(server_round, [reply])
        if stepped is None:
            raise ValueError(f"{self.optimizer} produced no model in round {server_round}")
        return [a.astype(np.float32) for a in stepped.to_numpy_ndarrays()]

    def _opened(self, aggregate: Aggregate, *, grid: Grid, ctx: RoundContext) -> Aggregate:
        if not isinstance(self.inner, EncryptedAggregation):
            return replace(aggregate, encrypted=None, failure="cannot open an encrypted sum")
        opened = self.inner.open(aggregate, grid=grid, ctx=ctx)
        if isinstance(opened, str):
            return replace(aggregate, arrays=None, encrypted=None, failure=opened)
        return replace(aggregate, arrays=opened, encrypted=None)
