"""Aggregation of CKKS-encrypted updates: the coordinator sums, key holders decrypt.

The coordinator holds only a :class:`~privacy.he.context.PublicContext`: it checks each
ciphertext (parameters, key fingerprint, length) and adds the valid ones homomorphically,
as they arrive (:class:`~coordinator.exchange.Exchange`), while slower participants are
still training. Each participant encrypted ``n_k · s · w_k``, with ``s`` the round's
``example_scale`` (1 / the rows declared at handshake), so the decrypted sum divided by
``s · Σ n_k`` (the aggregate's ``divisor``) is FedAvg and the sum stays near the weights'
own magnitude, well inside a one-prime CKKS modulus.

The sum is not decrypted here. The coordinator sends it with the next round's train
message and every participant decrypts it with the shared key (only an aggregate of at
least ``min_participants`` updates, DESIGN.md privacy mode ``he``) before training on it;
the first participant also returns the decrypted model, which the coordinator evaluates
and checkpoints (``coordinator.rounds``). That saves the separate decryption round trip of
every round; :meth:`EncryptedAggregation.open` makes one where none follows (the last
round, or when that participant's answer is missing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from models import wire
from privacy.errors import PrivacyError
from privacy.he.public import PublicContext
from privacy.he.records import record_to_update, update_to_record
from privacy.he.updates import EncryptedSum, EncryptedUpdate

from ..exchange import exchange
from ..update_checks import Rejection, num_examples_of, participant_of, reply_error
from .base import Aggregate, RoundContext, Strategy

logger = logging.getLogger(__name__)


class EncryptedAggregation:
    """Wraps an averaging strategy so that it aggregates ciphertexts instead of plain arrays."""

    def __init__(self, inner: Strategy, *, public: PublicContext) -> None:
        self.inner = inner
        self.public = public
        self.name = f"encrypted-{inner.name}"

    def configure_train(self, config: ConfigRecord) -> ConfigRecord:
        config = self.inner.configure_train(config)
        config["use-he"] = True
        return config

    def aggregate_train(
        self, replies: Iterable[Message], *, ctx: RoundContext, grid: Grid
    ) -> Aggregate:
        names = dict(ctx.participants)
        length = sum(int(np.prod(s)) for s in ctx.shapes)
        running = EncryptedSum(self.public, expected_length=length)
        valid: list[tuple[Message, int]] = []
        rejections: list[Rejection] = []
        for msg in replies:
            who = participant_of(msg, names)
            try:
                update = self._update_of(msg, ctx)  # an error reply is refused with its reason
                n = num_examples_of(msg)
                running.add(update, where=f"update from {who}")
                valid.append((msg, n))
            except (PrivacyError, ValueError, KeyError, TypeError) as exc:
                rejections.append(Rejection(who, str(exc)))
        # CKKS addition is exact modulo q, so the order of arrival does not change the sum;
        # contributors are listed in roster order all the same.
        rank = {node: i for i, node in enumerate(names)}
        valid.sort(key=lambda pair: rank.get(pair[0].metadata.src_node_id, len(rank)))
        contributors = tuple(participant_of(m, names) for m, _ in valid)
        if len(valid) < ctx.min_participants:
            return Aggregate(
                None,
                contributors,
                tuple(rejections),
                failure=f"{len(valid)} valid encrypted updates, fewer than "
                f"min_participants={ctx.min_participants}",
            )
        total = sum(n for _, n in valid)
        return Aggregate(
            None,
            contributors,
            tuple(rejections),
            num_examples=total,
            encrypted=running.result(),
            divisor=total * ctx.example_scale,
            holders=tuple(m.metadata.src_node_id for m, _ in valid),
        )

    def open(
        self, aggregate: Aggregate, *, grid: Grid, ctx: RoundContext
    ) -> list[np.ndarray] | str:
        """The model an encrypted aggregate holds, decrypted by one of its contributors
        (a message round trip), or the reason it could not be had."""
        if aggregate.encrypted is None:
            return "no encrypted aggregate to open"
        plain = self._decrypt(
            aggregate.encrypted,
            contributors=len(aggregate.holders),
            holders=aggregate.holders,
            grid=grid,
            ctx=ctx,
        )
        if isinstance(plain, str):
            return plain
        return wire.unflatten(plain / aggregate.divisor, ctx.shapes)

    def _update_of(self, msg: Message, ctx: RoundContext) -> EncryptedUpdate:
        error = reply_error(msg, expected=ctx.tag)
        if error is not None:
            raise ValueError(error)
        if wire.ENCRYPTED not in msg.content:
            raise ValueError("reply carries no encrypted update (was it sent in plain?)")
        return record_to_update(msg.content[wire.ENCRYPTED])

    def _decrypt(
        self,
        summed: EncryptedUpdate,
        *,
        contributors: int,
        holders: Sequence[int],
        grid: Grid,
        ctx: RoundContext,
    ) -> np.ndarray | str:
        """Ask key holders in turn to decrypt the aggregate; a reason string on failure."""
        reasons = []
        for node in holders:
            content = RecordDict(
                {
                    wire.ENCRYPTED: update_to_record(summed),
                    wire.CONFIG: ConfigRecord(
                        {"contributors": contributors, "server-round": ctx.server_round}
                    ),
                }
            )
            request = Message(content, dst_node_id=node, message_type=wire.DECRYPT)
            replies = exchange(grid, [request], timeout_s=ctx.timeout_s)
            who = ctx.participants.get(node, node)
            if not replies or replies[0].has_error():
                reason = replies[0].error.reason if replies else "no answer"
                reasons.append(f"{who}: {reason}")
                continue
            try:
                arrays = wire.arrays_of(replies[0].content).to_numpy_ndarrays()
            except (ValueError, TypeError) as exc:
                reasons.append(f"{who}: malformed reply: {exc}")
                continue
            if len(arrays) != 1:
                reasons.append(f"{who}: expected one aggregate array, got {len(arrays)}")
                continue
            values = arrays[0].astype(np.float64)
            if values.size != sum(int(np.prod(s)) for s in ctx.shapes):
                reasons.append(f"{who}: wrong aggregate length")
                continue
            if not np.all(np.isfinite(values)):
                reasons.append(f"{who}: aggregate not finite")
                continue
            return values
        logger.error("round %d: no key holder decrypted the aggregate", ctx.server_round)
        return "decryption failed: " + "; ".join(reasons)
