"""Relaying one protocol step of a vertical federation to named parties (Flower messages)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import ConfigRecord, ConfigRecordValues, Message, RecordDict
from flwr.serverapp import Grid

from models import wire
from models.vertical_parts import PartRef

from .exchange import exchange
from .handshake import FederationAbortedError


class Relay:
    """Sends one protocol step to named parties and returns their replies, refusing errors."""

    def __init__(
        self, grid: Grid, nodes: Mapping[str, int], *, run_id: str, timeout_s: float | None
    ):
        self.grid, self.nodes, self.run_id, self.timeout_s = grid, dict(nodes), run_id, timeout_s

    def ask(
        self,
        op: str,
        parties: list[str],
        *,
        config: dict[str, ConfigRecordValues] | None = None,
        payload: Mapping[str, Mapping[str, bytes | np.ndarray]] | None = None,
    ) -> dict[str, RecordDict]:
        messages = []
        for name in parties:
            content = RecordDict(
                {wire.CONFIG: ConfigRecord({"op": op, "run-id": self.run_id, **(config or {})})}
            )
            items = (payload or {}).get(name)
            if items:
                content[wire.PAYLOAD] = wire.payload_record(dict(items))
            messages.append(
                Message(content, dst_node_id=self.nodes[name], message_type=wire.VERTICAL)
            )
        replies = exchange(self.grid, messages, timeout_s=self.timeout_s)
        by_node = {r.metadata.src_node_id: r for r in replies}
        out = {}
        for name in parties:
            reply = by_node.get(self.nodes[name])
            if reply is None:
                raise FederationAbortedError(f"{op}: no answer from {name} within the timeout")
            if reply.has_error():
                raise FederationAbortedError(f"{op}: {name} refused: {reply.error.reason}")
            out[name] = reply.content
        return out

    def part_refs(self, replies: Mapping[str, RecordDict]) -> list[PartRef]:
        """Where each replying party filed its part (export id, hash, features)."""
        parts = []
        for name, reply in replies.items():
            info = wire.config_of(reply, wire.INFO)
            features = tuple(f for f in wire.config_str(info, "features").split(",") if f)
            sha256 = wire.config_str(info, "sha256")
            parts.append(
                PartRef(party=name, export_id=self.run_id, sha256=sha256, features=features)
            )
        return parts


def auc_and_loss(reply: RecordDict) -> tuple[float | None, float | None]:
    """The holdout AUC and log-loss a guest's evaluation reply carries."""
    info = wire.metrics_of(reply)
    auc, loss = info.get("auc"), info.get("log-loss")
    return (float(auc) if isinstance(auc, float | int) else None,
            float(loss) if isinstance(loss, float | int) else None)  # fmt: skip
