"""Checks on each participant's reply before it may enter an aggregate.

A malformed update (wrong shapes, NaN/inf, missing records, encrypted under another key
set) is rejected and logged; the round goes on with the others if enough remain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import Message

from models import wire

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    """Why one participant's reply was left out of a round (no data, only the reason)."""

    participant: str
    reason: str


@dataclass(frozen=True)
class PlainUpdate:
    """A checked plain update: arrays of the right shapes, finite, with its weight."""

    participant: str
    arrays: list[np.ndarray]
    num_examples: int


def participant_of(msg: Message, names: dict[int, str]) -> str:
    """The participant name behind a reply (falls back to the node id)."""
    return names.get(msg.metadata.src_node_id, f"node-{msg.metadata.src_node_id}")


def num_examples_of(msg: Message) -> int:
    """The reply's example count; must be a positive integer."""
    value = wire.metric_int(wire.metrics_of(msg.content), wire.NUM_EXAMPLES)
    if value <= 0:
        raise ValueError(f"'{wire.NUM_EXAMPLES}' must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class RoundTag:
    """The run and round a train reply must say it answers."""

    run_id: str
    server_round: int


def reply_error(msg: Message, *, expected: RoundTag | None = None) -> str | None:
    """The refusal reason of an error reply, or None when the reply carries content (and,
    when ``expected`` is given, says it answers that run's round)."""
    if msg.has_error():
        return f"participant refused or failed: {msg.error.reason}"
    if wire.METRICS not in msg.content:
        return "reply has no metrics record"
    return None if expected is None else stale_reason(msg, expected=expected)


def stale_reason(msg: Message, *, expected: RoundTag) -> str | None:
    """Why a reply is not an answer to ``expected`` (a stale or replayed update), or None."""
    info = msg.content.get(wire.INFO)
    got_round = None if info is None else info.get(wire.SERVER_ROUND)
    got_run = None if info is None else info.get(wire.RUN_ID)
    if not isinstance(got_round, int) or isinstance(got_round, bool):
        return "reply does not say which round it answers"
    if got_run != expected.run_id:
        return f"reply belongs to run {got_run!r}, not to this run ({expected.run_id})"
    if got_round != expected.server_round:
        return f"stale update: it answers round {got_round}, this is round {expected.server_round}"
    return None


def check_plain(
    msg: Message,
    *,
    participant: str,
    shapes: Sequence[tuple[int, ...]],
    expected: RoundTag | None = None,
) -> PlainUpdate | Rejection:
    """Validate a plain update against the global model's shapes (and the round it must
    answer, when ``expected`` is given)."""
    error = reply_error(msg, expected=expected)
    if error is not None:
        return Rejection(participant, error)
    if wire.ARRAYS not in msg.content:
        return Rejection(participant, "reply has no parameter arrays")
    try:
        n = num_examples_of(msg)
        arrays = wire.arrays_of(msg.content).to_numpy_ndarrays()
    except (ValueError, TypeError) as exc:
        return Rejection(participant, f"malformed reply: {exc}")
    got = [tuple(a.shape) for a in arrays]
    if got != [tuple(s) for s in shapes]:
        return Rejection(
            participant, f"update shapes {got} do not match the model's {list(shapes)}"
        )
    for index, array in enumerate(arrays):
        if not np.issubdtype(array.dtype, np.floating):
            return Rejection(participant, f"array {index} has dtype {array.dtype}, not float")
        if not np.all(np.isfinite(array)):
            return Rejection(participant, f"array {index} holds NaN or infinite values")
    return PlainUpdate(participant, [a.astype(np.float64) for a in arrays], n)


def log_rejections(server_round: int, rejections: Sequence[Rejection]) -> None:
    """Log each rejection once, naming the participant and the reason."""
    for rejection in rejections:
        logger.warning(
            "round %d: rejected update from %s: %s",
            server_round,
            rejection.participant,
            rejection.reason,
        )
