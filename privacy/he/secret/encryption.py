"""Encryption of a participant's update and decryption of the aggregate (secret key only).

A participant encrypts its (already weighted) update with :func:`encrypt_update`; the
coordinator sums the updates with :func:`privacy.he.updates.sum_encrypted`, and a key holder
decrypts the sum with :func:`decrypt_aggregate`, which checks the check slot (see
:mod:`privacy.he.updates`).

Decrypted CKKS results can leak the secret key when released at full precision (Li &
Micciancio 2021, "On the Security of Homomorphic Encryption on Approximate Numbers",
EUROCRYPT): :func:`decrypt_aggregate` rounds its output, decrypts only aggregates of at
least ``min_contributors`` updates, and counts decryptions per key object.
"""

from __future__ import annotations

import logging
import math
import numbers

import numpy as np

from ...errors import DecryptionError, InvalidParametersError, InvalidUpdateError, PrivacyError
from ..packing import chunk_lengths, pack, unpack
from ..updates import (
    CHECK_TOLERANCE,
    MAX_CONTRIBUTORS,
    EncryptedUpdate,
    _check_update,
    _load_chunks,
)
from .context import SecretContext

__all__ = ["decrypt_aggregate", "encrypt_update"]

logger = logging.getLogger(__name__)


def encrypt_update(
    ctx: SecretContext, values: np.ndarray, *, check_value: float | None = 1.0
) -> EncryptedUpdate:
    """Encrypt a flat float vector (plus a check slot holding ``check_value``).

    Values must be finite and below ``ctx.params.max_abs_value / MAX_CONTRIBUTORS`` in
    magnitude, so that a sum of up to :data:`MAX_CONTRIBUTORS` updates cannot wrap around.
    """
    if not isinstance(ctx, SecretContext):
        raise InvalidParametersError(
            f"encrypt_update needs the participants' SecretContext, got {type(ctx).__name__}"
        )
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParametersError(f"values must be a float vector: {exc}") from exc
    if array.ndim != 1 or array.size == 0:
        raise InvalidParametersError(
            f"values must be a non-empty 1-D vector, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidParametersError("values must be finite (found NaN or inf)")
    limit = ctx.params.max_abs_value / MAX_CONTRIBUTORS
    peak = float(np.max(np.abs(array)))
    if peak > limit:
        raise InvalidParametersError(
            f"largest |value| {peak:.3g} is over {limit:.3g} (max_abs_value / {MAX_CONTRIBUTORS} "
            f"for coeff_mod_bit_sizes={ctx.params.coeff_mod_bit_sizes}): a sum could wrap "
            "around; scale the update down or use a longer modulus chain"
        )
    if check_value is not None:
        if isinstance(check_value, bool) or not isinstance(check_value, numbers.Real):
            raise InvalidParametersError(
                f"check_value must be a number or None, got {check_value!r}"
            )
        if not (math.isfinite(check_value) and 0 < abs(check_value) <= limit):
            raise InvalidParametersError(f"check_value must be finite, non-zero, <= {limit:.3g}")
        array = np.append(array, float(check_value))
    codec = ctx._codec()
    try:
        chunks = []
        start = 0
        for length in chunk_lengths(array.size, ctx.params.slots):
            chunks.append(codec.encrypt(pack(array[start : start + length])))
            start += length
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PrivacyError(f"CKKS encryption failed: {exc}") from exc
    return EncryptedUpdate(
        chunks=tuple(chunks),
        length=array.size - (0 if check_value is None else 1),
        fingerprint=ctx.fingerprint,
        check_value=None if check_value is None else float(check_value),
    )


def decrypt_aggregate(
    ctx: SecretContext,
    update: EncryptedUpdate,
    *,
    contributors: int,
    min_contributors: int,
    round_decimals: int | None = 8,
) -> np.ndarray:
    """Decrypt a sum of ``contributors`` updates; refuse anything smaller than an aggregate.

    Raises :class:`DecryptionError` if ``contributors < min_contributors``, if ``ctx`` is
    not a secret context, or if the check slot does not decrypt to
    ``contributors · check_value`` (wrong key, or not that many contributions). The values
    are rounded to ``round_decimals`` (``None``: not rounded) before release, as a
    mitigation of Li & Micciancio 2021. Measured noise of a sum of ten updates is
    ~6e-10 (standard deviation), so after rounding to 8 decimals about 5 % of the values
    still differ from the rounded exact sum (i.e. carry a bit of noise), 0.5 % at 7 and
    0.06 % at 6 decimals; 6 decimals cost at most 5e-7 of accuracy.
    """
    if not isinstance(ctx, SecretContext):
        raise DecryptionError(
            f"only the participants' SecretContext can decrypt, got {type(ctx).__name__}"
        )
    for name, value in (("contributors", contributors), ("min_contributors", min_contributors)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InvalidParametersError(f"{name} must be an int >= 1, got {value!r}")
    if round_decimals is not None and (
        isinstance(round_decimals, bool)
        or not isinstance(round_decimals, numbers.Integral)
        or round_decimals < 0
    ):
        raise InvalidParametersError(
            f"round_decimals must be an int >= 0 or None, got {round_decimals!r}"
        )
    if contributors < min_contributors:
        raise DecryptionError(
            f"refusing to decrypt: {contributors} contribution(s), fewer than "
            f"min_contributors={min_contributors} (only aggregates are decrypted)"
        )
    if not isinstance(update, EncryptedUpdate):
        raise InvalidUpdateError(f"expected an EncryptedUpdate, got {type(update).__name__}")
    _check_update(ctx, update, where="aggregate", expected_length=update.length)
    vectors = _load_chunks(ctx, update, where="aggregate")
    codec = ctx._codec()
    total = update.length + (0 if update.check_value is None else 1)
    lengths = chunk_lengths(total, ctx.params.slots)
    plain = np.concatenate(
        [unpack(codec.decrypt(v), n) for v, n in zip(vectors, lengths, strict=True)]
    )
    ctx._decryptions += 1
    if update.check_value is not None:
        expected = contributors * update.check_value
        observed = float(plain[update.length])
        if not abs(observed - expected) <= CHECK_TOLERANCE:
            raise DecryptionError(
                f"check slot decrypted to {observed:.6g}, expected {expected:g}: wrong secret key, "
                f"or the aggregate does not hold exactly {contributors} contributions"
            )
    else:
        logger.warning("aggregate has no check slot: key and contributor count are unverified")
    values = plain[: update.length]
    if round_decimals is not None:
        values = np.round(values, int(round_decimals))
    logger.info(
        "decrypted an aggregate of %d values from %d contributors (decryption %d with this key)",
        update.length,
        contributors,
        ctx.decryptions,
    )
    return values
