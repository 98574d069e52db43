"""Client-side Flower mods: steps that wrap local training without living inside it.

``make_decrypt_mod`` opens an incoming encrypted aggregate (from round 2 under CKKS, the
coordinator sends the previous round's ciphertext sum instead of a plain model): it
decrypts it with the participants' shared key, refusing anything with fewer than
``min_participants`` contributions, hands the plain model to local training and, when the
round asks, returns the decrypted model beside the update.

``make_encrypt_mod`` encrypts the outgoing update under the participants' shared CKKS key
when the round's privacy mode includes ``he``. It first refuses to send anything that is not
finite (a participant never ships NaN/inf, encrypted or not), then scales the update by the
participant's example count times the round's ``example-scale`` (1 / the rows declared at
handshake), so that the coordinator's ciphertext sum is the numerator of FedAvg (McMahan
et al. 2017) at the magnitude of the weights themselves, and only the aggregate is ever
decrypted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord, Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from models import wire
from models.federation import FederationSpec, ParticipantSpec
from models.layout import secret_key_path
from privacy.errors import PrivacyError
from privacy.he.records import record_to_update, update_to_record
from privacy.he.secret import decrypt_aggregate, encrypt_update

from .keys import load_secret

logger = logging.getLogger(__name__)

Resolve = Callable[[Context], tuple[FederationSpec, ParticipantSpec]]


def make_encrypt_mod(resolve: Resolve) -> Callable[[Message, Context, ClientAppCallable], Message]:
    """A mod that replaces a plain update by its CKKS encryption when the round asks for it."""

    def encrypt_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        try:
            config = wire.config_of(msg.content)
            use_he = wire.config_bool(config, "use-he", default=False)
            scale = wire.config_float(config, "example-scale", default=1.0)
            if not 0.0 < scale <= 1.0:
                raise ValueError(f"example-scale must be in (0, 1], got {scale}")
        except ValueError as exc:
            return Message(Error(code=400, reason=f"malformed train message: {exc}"), reply_to=msg)
        if not use_he:
            return reply
        spec, participant = resolve(context)
        try:
            arrays = wire.arrays_of(reply.content).to_numpy_ndarrays()
            weight = wire.metric_float(wire.metrics_of(reply.content), wire.NUM_EXAMPLES)
        except ValueError as exc:
            return Message(Error(code=500, reason=f"local reply is malformed: {exc}"), reply_to=msg)
        flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
        if not np.all(np.isfinite(flat)):
            return Message(Error(code=500, reason="local update is not finite"), reply_to=msg)
        try:
            secret = load_secret(secret_key_path(spec, participant.name))
            update = encrypt_update(secret, flat * (weight * scale))
        except PrivacyError as exc:
            return Message(Error(code=500, reason=f"encryption failed: {exc}"), reply_to=msg)
        logger.info(
            "encrypted an update of %d values in %d ciphertexts", flat.size, len(update.chunks)
        )
        content = RecordDict(
            {
                wire.ENCRYPTED: update_to_record(update),
                wire.METRICS: reply.content[wire.METRICS],
                wire.INFO: reply.content[wire.INFO],
            }
        )
        return Message(content, reply_to=msg)

    return encrypt_mod


def make_decrypt_mod(resolve: Resolve) -> Callable[[Message, Context, ClientAppCallable], Message]:
    """A mod that turns an incoming encrypted aggregate into the plain global model."""

    def decrypt_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if wire.ENCRYPTED not in msg.content:
            return call_next(msg, context)
        try:
            config = wire.config_of(msg.content)
            contributors = wire.config_int(config, "aggregate-contributors")
            divisor = wire.config_float(config, "aggregate-divisor")
            if not divisor > 0:
                raise ValueError(f"aggregate-divisor must be > 0, got {divisor}")
            shapes = wire.decode_shapes(wire.config_ints(config, "model-shapes"))
            give_back = wire.config_bool(config, "return-model", default=False)
            spec, participant = resolve(context)
            secret = load_secret(secret_key_path(spec, participant.name))
            total = decrypt_aggregate(
                secret,
                record_to_update(msg.content[wire.ENCRYPTED]),
                contributors=contributors,
                min_contributors=spec.min_participants,
            )
            arrays = [a.astype(np.float32) for a in wire.unflatten(total / divisor, shapes)]
        except (PrivacyError, ValueError) as exc:
            logger.warning("refusing an encrypted aggregate: %s", exc)
            return Message(
                Error(code=400, reason=f"cannot open the aggregate: {exc}"), reply_to=msg
            )
        del msg.content[wire.ENCRYPTED]
        msg.content[wire.ARRAYS] = ArrayRecord(arrays)
        reply = call_next(msg, context)
        if give_back and not reply.has_error():
            reply.content[wire.AGGREGATE] = ArrayRecord(arrays)
        return reply

    return decrypt_mod
