"""Before round 1: learn who is who, and refuse participants whose schema does not match.

Each node answers with its participant name, its declared schema (and hash), its row counts
after the consent filter and, in CKKS modes, the fingerprint of the key set it holds.
Mismatches are refused here, naming the participant, so no round ever mixes schemas.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from models import wire
from models.schema import TabularSchema

from .exchange import exchange
from .report import ParticipantRecord

logger = logging.getLogger(__name__)


class CoordinatorError(Exception):
    """Root of the coordinator's errors."""


class FederationAbortedError(CoordinatorError):
    """The federation cannot start or go on (too few participants, no key holder...)."""


@dataclass(frozen=True)
class Roster:
    """The accepted participants by node id, and every participant's record."""

    nodes: dict[int, str]
    records: list[ParticipantRecord]


def wait_for_nodes(grid: Grid, *, expected: int, timeout_s: float) -> list[int]:
    """Wait until ``expected`` nodes are connected, or return those present at the deadline."""
    deadline = time.monotonic() + timeout_s
    nodes: list[int] = []
    while time.monotonic() < deadline:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        time.sleep(0.2)
    logger.warning("only %d of %d nodes connected after %.0f s", len(nodes), expected, timeout_s)
    return nodes


def run_handshake(
    grid: Grid,
    nodes: Sequence[int],
    *,
    schema: TabularSchema | Mapping[str, TabularSchema],
    fingerprint: str | None,
    federation: str,
    timeout_s: float | None,
    order: Sequence[str] = (),
) -> Roster:
    """Query every node and accept only those matching the federation's schema and keys.

    ``schema`` is one schema for all (horizontal) or each participant's own (vertical).

    The roster lists participants in ``order`` (the federation file's), whatever order
    their answers came in, then any others by name.
    """
    messages = [
        Message(
            RecordDict({wire.CONFIG: ConfigRecord({"federation": federation})}),
            dst_node_id=node,
            message_type=wire.HANDSHAKE,
        )
        for node in nodes
    ]
    accepted: dict[int, str] = {}
    records: list[ParticipantRecord] = []
    for reply in exchange(grid, messages, timeout_s=timeout_s):
        node = reply.metadata.src_node_id
        if reply.has_error():
            reason = str(reply.error.reason)
            name = reason[1 : reason.index("]")] if reason.startswith("[") else f"node-{node}"
            reason = f"refused at handshake: {reason}"
            records.append(ParticipantRecord(name, 0, 0, {}, accepted=False, reason=reason))
            logger.error("%s", reason)
            continue
        try:
            record = _screen(
                reply.content, schema=schema, fingerprint=fingerprint, taken=accepted.values()
            )
        except ValueError as exc:
            name = _name_or_node(reply.content, node)
            reason = f"malformed handshake reply: {exc}"
            record = ParticipantRecord(name, 0, 0, {}, accepted=False, reason=reason)
        if record.accepted:
            accepted[node] = record.name
        else:
            logger.error("refusing %s before round 1: %s", record.name, record.reason)
        records.append(record)
    rank = {name: i for i, name in enumerate(order)}

    def key(name: str) -> tuple[int, str]:
        return rank.get(name, len(rank)), name

    return Roster(
        dict(sorted(accepted.items(), key=lambda item: key(item[1]))),
        sorted(records, key=lambda r: key(r.name)),
    )


def _screen(
    content: RecordDict,
    *,
    schema: TabularSchema | Mapping[str, TabularSchema],
    fingerprint: str | None,
    taken: Iterable[str],
) -> ParticipantRecord:
    """One handshake answer as a participant record, accepted or with the refusal reason."""
    info, metrics = wire.config_of(content, wire.INFO), wire.metrics_of(content)
    name = wire.config_str(info, "participant")
    if isinstance(schema, TabularSchema):
        reason = _mismatch(info, schema=schema, fingerprint=fingerprint, name=name)
    elif name in schema:
        reason = _mismatch(info, schema=schema[name], fingerprint=fingerprint, name=name)
    else:
        reason = f"participant {name!r} is not in this federation"
    if reason is None and name in taken:
        reason = f"participant {name!r} answered from two nodes"
    excluded = {
        k.removeprefix("excluded."): wire.metric_int(metrics, k)
        for k in metrics
        if k.startswith("excluded.")
    }
    rows_total = wire.metric_int(metrics, "rows-total")
    rows_used = wire.metric_int(metrics, "rows-used")
    if reason is None and rows_used == 0:
        reason = f"participant {name!r} has no row with an active consent grant"
    commitment = info.get("data-commitment")
    return ParticipantRecord(
        name,
        rows_total,
        rows_used,
        excluded,
        reason is None,
        reason,
        data_commitment=str(commitment) if commitment else None,
    )


def _name_or_node(content: RecordDict, node: int) -> str:
    """The participant name a reply gives, or its node id where even that is unreadable."""
    try:
        return wire.config_str(wire.config_of(content, wire.INFO), "participant")
    except ValueError:
        return f"node-{node}"


def _mismatch(
    info: ConfigRecord, *, schema: TabularSchema, fingerprint: str | None, name: str
) -> str | None:
    theirs = TabularSchema.from_dict(json.loads(wire.config_str(info, "schema")))
    if theirs.hash() != schema.hash():
        differences = "; ".join(schema.compare(theirs)) or "schema hash differs"
        return f"participant {name!r} schema does not match the federation's: {differences}"
    if fingerprint is None:
        return None
    theirs_fingerprint = wire.config_str(info, "fingerprint")
    if theirs_fingerprint != fingerprint:
        return (
            f"participant {name!r} holds a different CKKS key set "
            f"(fingerprint {theirs_fingerprint[:12]}… vs {fingerprint[:12]}…)"
        )
    return None
