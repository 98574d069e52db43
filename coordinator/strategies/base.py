"""The seam every aggregation strategy fits: configure a round, aggregate its replies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid

from privacy.he.updates import EncryptedUpdate

from ..update_checks import Rejection, RoundTag


@dataclass(frozen=True)
class RoundContext:
    """What a strategy needs to know about the round in progress."""

    server_round: int
    shapes: tuple[tuple[int, ...], ...]
    participants: Mapping[int, str]  # node id -> participant name
    min_participants: int
    timeout_s: float | None
    #: Participants weigh an encrypted update by ``num_examples * example_scale`` (1 / the
    #: rows declared at handshake), so a CKKS sum stays near the weights' own magnitude.
    example_scale: float = 1.0
    #: The global model the round's participants start from (server optimisers step it).
    global_arrays: tuple[np.ndarray, ...] = ()
    #: The training run's id: a train reply must name it and this round (else it is stale).
    run_id: str = ""

    @property
    def tag(self) -> RoundTag | None:
        """What a train reply must say it answers (None outside a training run)."""
        return RoundTag(self.run_id, self.server_round) if self.run_id else None


@dataclass(frozen=True)
class Aggregate:
    """The outcome of aggregation: new global arrays, or None when the round failed."""

    arrays: list[np.ndarray] | None
    contributors: tuple[str, ...]
    rejections: tuple[Rejection, ...] = ()
    num_examples: int = 0
    failure: str | None = None
    extra: dict[str, float] = field(default_factory=dict)
    #: Under CKKS: the encrypted sum, still to be decrypted by a key holder; the model is
    #: ``decrypted sum / divisor``; ``holders`` are the contributors' node ids.
    encrypted: EncryptedUpdate | None = None
    divisor: float = 0.0
    holders: tuple[int, ...] = ()


class Strategy(Protocol):
    """Round configuration and aggregation (Flower's strategy split, message-based)."""

    name: str

    def configure_train(self, config: ConfigRecord) -> ConfigRecord:
        """Add strategy-specific keys to the round's train config."""
        ...

    def aggregate_train(
        self, replies: Iterable[Message], *, ctx: RoundContext, grid: Grid
    ) -> Aggregate:
        """Turn the round's replies, read once as they arrive, into the next global model."""
        ...
