"""FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020) over plain updates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid

from ..update_checks import PlainUpdate, Rejection, check_plain, participant_of
from .base import Aggregate, RoundContext


def weighted_mean(updates: Sequence[PlainUpdate]) -> list[np.ndarray]:
    """Example-weighted mean of the updates' arrays, array by array."""
    total = sum(u.num_examples for u in updates)
    return [
        sum(u.arrays[i] * (u.num_examples / total) for u in updates)  # type: ignore[misc]
        for i in range(len(updates[0].arrays))
    ]


class FedAvg:
    """Example-weighted averaging of checked plain updates."""

    name = "fedavg"

    def configure_train(self, config: ConfigRecord) -> ConfigRecord:
        config["proximal-mu"] = 0.0
        return config

    def aggregate_train(
        self, replies: Iterable[Message], *, ctx: RoundContext, grid: Grid
    ) -> Aggregate:
        checked = [
            check_plain(
                m,
                participant=participant_of(m, dict(ctx.participants)),
                shapes=ctx.shapes,
                expected=ctx.tag,
            )
            for m in replies
        ]
        # Replies arrive in any order; average in roster order so a run is reproducible.
        rank = {name: i for i, name in enumerate(ctx.participants.values())}
        good = sorted(
            (c for c in checked if isinstance(c, PlainUpdate)),
            key=lambda u: rank.get(u.participant, len(rank)),
        )
        bad = tuple(c for c in checked if isinstance(c, Rejection))
        contributors = tuple(u.participant for u in good)
        if len(good) < ctx.min_participants:
            return Aggregate(
                None,
                contributors,
                bad,
                failure=f"{len(good)} valid updates, fewer than min_participants="
                f"{ctx.min_participants}",
            )
        return Aggregate(
            weighted_mean(good), contributors, bad, num_examples=sum(u.num_examples for u in good)
        )


class FedProx(FedAvg):
    """FedAvg whose participants add a proximal term mu/2·||w - w_global||² locally."""

    name = "fedprox"

    def __init__(self, *, proximal_mu: float) -> None:
        if proximal_mu < 0:
            raise ValueError(f"proximal_mu must be >= 0, got {proximal_mu}")
        self.proximal_mu = proximal_mu

    def configure_train(self, config: ConfigRecord) -> ConfigRecord:
        config["proximal-mu"] = self.proximal_mu
        return config
