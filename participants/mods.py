"""Client-side Flower mods: steps that wrap local training without living inside it.

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
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from models import wire
from models.federation import FederationSpec, ParticipantSpec
from models.layout import secret_key_path
from privacy.errors import PrivacyError
from privacy.he.records import update_to_record
from privacy.he.secret import encrypt_update

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
