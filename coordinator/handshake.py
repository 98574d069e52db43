"""Before round 1: learn who is who, and refuse participants whose schema does not match.

Each node answers with its participant name, its declared schema (and hash), its row counts
after the consent filter and, in CKKS modes, the fingerprint of the key set it holds.
Mismatches are refused here, naming the participant, so no round ever mixes schemas.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from models import wire
from models.schema import TabularSchema

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
    schema: TabularSchema,
    fingerprint: str | None,
    federation: str,
    timeout_s: float | None,
) -> Roster:
    """Query every node and accept only those matching the federation's schema and keys."""
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
    for reply in grid.send_and_receive(messages, timeout=timeout_s):
        node = reply.metadata.src_node_id
        if reply.has_error():
            reason = str(reply.error.reason)
            name = reason[1 : reason.index("]")] if reason.startswith("[") else f"node-{node}"
            reason = f"refused at handshake: {reason}"
            records.append(ParticipantRecord(name, 0, 0, {}, accepted=False, reason=reason))
            logger.error("%s", reason)
            continue
        info, metrics = reply.content[wire.INFO], reply.content[wire.METRICS]
        name = str(info["participant"])
        reason = _mismatch(info, schema=schema, fingerprint=fingerprint, name=name)
        if reason is None and name in accepted.values():
            reason = f"participant {name!r} answered from two nodes"
        excluded = {
            k.removeprefix("excluded."): int(v)
            for k, v in metrics.items()
            if k.startswith("excluded.")
        }
        rows_total, rows_used = int(metrics["rows-total"]), int(metrics["rows-used"])
        if reason is None and rows_used == 0:
            reason = f"participant {name!r} has no row with an active consent grant"
        if reason is None:
            accepted[node] = name
        else:
            logger.error("refusing %s before round 1: %s", name, reason)
        records.append(
            ParticipantRecord(name, rows_total, rows_used, excluded, reason is None, reason)
        )
    return Roster(accepted, records)


def _mismatch(
    info: ConfigRecord, *, schema: TabularSchema, fingerprint: str | None, name: str
) -> str | None:
    theirs = TabularSchema.from_dict(json.loads(str(info["schema"])))
    if theirs.hash() != schema.hash():
        differences = "; ".join(schema.compare(theirs)) or "schema hash differs"
        return f"participant {name!r} schema does not match the federation's: {differences}"
    if fingerprint is not None and str(info["fingerprint"]) != fingerprint:
        return (
            f"participant {name!r} holds a different CKKS key set "
            f"(fingerprint {str(info['fingerprint'])[:12]}… vs {fingerprint[:12]}…)"
        )
    return None
