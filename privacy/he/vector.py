"""Encrypted model updates: flat float vectors as chunks of CKKS ciphertexts.

A participant encrypts its (already weighted) update with :func:`encrypt_update`, the
coordinator checks each update with :func:`validate_update` and adds the valid ones with
:func:`sum_encrypted` using only a :class:`~privacy.he.context.PublicContext`, and a key
holder decrypts the sum with :func:`decrypt_aggregate` (DESIGN.md, privacy mode ``he``).

A vector of any length is cut into chunks of ``slots`` (N/2) values, one TenSEAL
``CKKSVector`` per chunk, serialized independently so that a bad chunk is named precisely.
One *check slot* is appended after the values: every participant encrypts
``check_value`` (1.0) there, so the decrypted sum must hold ``contributors · check_value``.
A wrong secret key decrypts to noise of magnitude ~1e5 and fails that check, and so does
an aggregate that does not hold exactly the claimed number of contributions (such as a
single update presented as an aggregate). It detects mistakes under the honest-but-curious
threat model; it is no defence against a malicious coordinator, which can forge ciphertexts.

Decrypted CKKS results can leak the secret key when released at full precision (Li &
Micciancio 2021, "On the Security of Homomorphic Encryption on Approximate Numbers",
EUROCRYPT): :func:`decrypt_aggregate` rounds its output, decrypts only aggregates of at
least ``min_contributors`` updates, and counts decryptions per key object.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import tenseal as ts

from ..errors import (
    ContextMismatchError,
    DecryptionError,
    InvalidParametersError,
    InvalidUpdateError,
    PrivacyError,
)
from .context import PublicContext, SecretContext

__all__ = [
    "CHECK_TOLERANCE",
    "EncryptedUpdate",
    "MAX_CONTRIBUTORS",
    "decrypt_aggregate",
    "encrypt_update",
    "sum_encrypted",
    "validate_update",
]

logger = logging.getLogger(__name__)

#: Sums of up to this many updates cannot overflow: each value must stay below
#: ``params.max_abs_value / MAX_CONTRIBUTORS``.
MAX_CONTRIBUTORS = 1024
#: Largest accepted |decrypted check slot - contributors * check_value| (CKKS error ~1e-8).
CHECK_TOLERANCE = 1e-3

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_WIRE_MAGIC = b"fedrisk-ckks-update/1\n"
_HEADER = struct.Struct(">64sQBdI")  # fingerprint, length, has check slot, check value, chunks
_CHUNK_SIZE = struct.Struct(">I")


@dataclass(frozen=True)
class EncryptedUpdate:
    """A flat vector of ``length`` values encrypted as CKKS ciphertext chunks.

    ``fingerprint`` names the key set (see :attr:`PublicContext.fingerprint`);
    ``check_value`` is the value each contribution holds in the check slot after the
    values (``None``: no check slot).
    """

    chunks: tuple[bytes, ...] = field(repr=False)
    length: int
    fingerprint: str
    check_value: float | None = 1.0

    def __post_init__(self) -> None:
        chunks = self.chunks
        if isinstance(chunks, (bytes, bytearray, str)) or not all(
            isinstance(c, (bytes, bytearray)) for c in chunks
        ):
            raise InvalidUpdateError("chunks must be a sequence of bytes")
        object.__setattr__(
            self, "chunks", tuple(c if isinstance(c, bytes) else bytes(c) for c in chunks)
        )
        if not self.chunks:
            raise InvalidUpdateError("an encrypted update needs at least one ciphertext")
        length = self.length
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
            raise InvalidUpdateError(f"length must be an int >= 1, got {length!r}")
        object.__setattr__(self, "length", int(length))
        if not isinstance(self.fingerprint, str) or not _FINGERPRINT.fullmatch(self.fingerprint):
            raise InvalidUpdateError(f"fingerprint must be 64 hex digits, got {self.fingerprint!r}")
        check = self.check_value
        if check is not None:
            if isinstance(check, bool) or not isinstance(check, numbers.Real):
                raise InvalidUpdateError(f"check_value must be a number or None, got {check!r}")
            if not math.isfinite(check):
                raise InvalidUpdateError(f"check_value must be finite, got {check}")
            object.__setattr__(self, "check_value", float(check))

    @property
    def nbytes(self) -> int:
        """Total size of the ciphertext chunks in bytes."""
        return sum(len(c) for c in self.chunks)

    def to_bytes(self) -> bytes:
        """One byte string holding the whole update (for transports without lists)."""
        check = self.check_value
        header = _HEADER.pack(
            self.fingerprint.encode("ascii"),
            self.length,
            check is not None,
            0.0 if check is None else check,
            len(self.chunks),
        )
        parts = [_WIRE_MAGIC, header]
        for chunk in self.chunks:
            parts += [_CHUNK_SIZE.pack(len(chunk)), chunk]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedUpdate:
        """Parse :meth:`to_bytes` output; anything malformed is an :class:`InvalidUpdateError`."""
        view = memoryview(bytes(data))
        if bytes(view[: len(_WIRE_MAGIC)]) != _WIRE_MAGIC:
            raise InvalidUpdateError("not a fedrisk encrypted update (bad header)")
        offset = len(_WIRE_MAGIC)
        try:
            raw_fp, length, has_check, check, count = _HEADER.unpack_from(view, offset)
            offset += _HEADER.size
            chunks = []
            for _ in range(count):
                (size,) = _CHUNK_SIZE.unpack_from(view, offset)
                offset += _CHUNK_SIZE.size
                if offset + size > len(view):
                    raise InvalidUpdateError("encrypted update is truncated")
                chunks.append(bytes(view[offset : offset + size]))
                offset += size
        except struct.error as exc:
            raise InvalidUpdateError(f"encrypted update is truncated: {exc}") from exc
        if offset != len(view):
            raise InvalidUpdateError(f"{len(view) - offset} stray bytes after the encrypted update")
        return cls(
            chunks=tuple(chunks),
            length=length,
            fingerprint=raw_fp.decode("ascii", errors="replace"),
            check_value=check if has_check else None,
        )


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
    slots = ctx.params.slots
    encryptor = ctx._encrypting_context()
    try:
        chunks = tuple(
            ts.ckks_vector(encryptor, array[start : start + slots].tolist()).serialize()
            for start in range(0, array.size, slots)
        )
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PrivacyError(f"CKKS encryption failed: {exc}") from exc
    return EncryptedUpdate(
        chunks=chunks,
        length=array.size - (0 if check_value is None else 1),
        fingerprint=ctx.fingerprint,
        check_value=None if check_value is None else float(check_value),
    )


def validate_update(
    ctx: PublicContext | SecretContext, update: EncryptedUpdate, *, expected_length: int
) -> None:
    """Check one update before summing: key set, length, and that every chunk parses under
    ``ctx`` and can be added to a ciphertext of this context (same parameters and scale).

    Raises :class:`ContextMismatchError` (other key set or parameters) or
    :class:`InvalidUpdateError` (a ``ValueError``: wrong length, garbage bytes).
    """
    _check_context(ctx)
    if isinstance(expected_length, bool) or not isinstance(expected_length, numbers.Integral):
        raise InvalidParametersError(f"expected_length must be an int, got {expected_length!r}")
    _check_update(ctx, update, where="update", expected_length=int(expected_length))
    for number, vector in enumerate(_load(ctx, update, where="update")):
        try:
            _zero(ctx, vector.size()) + vector
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ContextMismatchError(
                f"update chunk {number} cannot be added under this context: {exc}"
            ) from exc


def sum_encrypted(
    ctx: PublicContext | SecretContext, updates: Sequence[EncryptedUpdate]
) -> EncryptedUpdate:
    """Add encrypted updates homomorphically; needs only the public context.

    Every update must carry ``ctx``'s fingerprint (else :class:`ContextMismatchError`) and
    the first update's length and check value (else :class:`InvalidUpdateError`, a
    ``ValueError``); the error names the index of the first bad update.
    """
    _check_context(ctx)
    items = list(updates)
    if not items:
        raise InvalidParametersError("sum_encrypted needs at least one update")
    if not isinstance(items[0], EncryptedUpdate):
        raise InvalidUpdateError(f"update 0 is a {type(items[0]).__name__}, not an EncryptedUpdate")
    first = items[0]
    for index, update in enumerate(items):
        where = f"update {index}"
        _check_update(ctx, update, where=where, expected_length=first.length)
        if update.check_value != first.check_value:
            raise InvalidUpdateError(
                f"{where} has check value {update.check_value}, update 0 has {first.check_value}"
            )
    total = _load(ctx, first, where="update 0")
    for index, update in enumerate(items[1:], start=1):
        for number, vector in enumerate(_load(ctx, update, where=f"update {index}")):
            try:
                total[number].add_(vector)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise ContextMismatchError(
                    f"update {index} chunk {number} cannot be added: {exc}"
                ) from exc
    result = EncryptedUpdate(
        chunks=tuple(v.serialize() for v in total),
        length=first.length,
        fingerprint=ctx.fingerprint,
        check_value=first.check_value,
    )
    logger.info(
        "summed %d encrypted updates of %d values (%d ciphertexts, %.1f MB)",
        len(items),
        first.length,
        len(result.chunks),
        result.nbytes / 1e6,
    )
    return result


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
    mitigation of Li & Micciancio 2021; CKKS noise here is ~1e-8, so 6 decimals remove it
    entirely while 8 keep more precision.
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
    vectors = _load(ctx, update, where="aggregate")
    try:
        plain = np.concatenate([np.asarray(v.decrypt(), dtype=np.float64) for v in vectors])
    except (ValueError, RuntimeError, TypeError) as exc:
        raise DecryptionError(f"CKKS decryption failed: {exc}") from exc
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


def _check_context(ctx: object) -> None:
    if not isinstance(ctx, (PublicContext, SecretContext)):
        raise InvalidParametersError(f"expected a CKKS context, got {type(ctx).__name__}")


def _chunk_sizes(update: EncryptedUpdate, slots: int) -> list[int]:
    total = update.length + (0 if update.check_value is None else 1)
    return [min(slots, total - start) for start in range(0, total, slots)]


def _check_update(
    ctx: PublicContext | SecretContext,
    update: EncryptedUpdate,
    *,
    where: str,
    expected_length: int,
) -> None:
    if not isinstance(update, EncryptedUpdate):
        raise InvalidUpdateError(f"{where} is a {type(update).__name__}, not an EncryptedUpdate")
    if update.fingerprint != ctx.fingerprint:
        raise ContextMismatchError(
            f"{where} was encrypted under key set {update.fingerprint[:16]}…, not this "
            f"federation's {ctx.fingerprint[:16]}…"
        )
    if update.length != expected_length:
        raise InvalidUpdateError(f"{where} has {update.length} values, expected {expected_length}")
    expected_chunks = len(_chunk_sizes(update, ctx.params.slots))
    if len(update.chunks) != expected_chunks:
        raise InvalidUpdateError(
            f"{where} has {len(update.chunks)} ciphertexts, expected {expected_chunks}"
        )


def _load(
    ctx: PublicContext | SecretContext, update: EncryptedUpdate, *, where: str
) -> list[ts.CKKSVector]:
    """Deserialize every chunk under ``ctx`` and check its slot count."""
    vectors = []
    for number, (chunk, size) in enumerate(
        zip(update.chunks, _chunk_sizes(update, ctx.params.slots), strict=True)
    ):
        try:
            vector = ts.ckks_vector_from(ctx._ts, chunk)
        except RuntimeError as exc:
            if "invalid" in str(exc):
                raise ContextMismatchError(
                    f"{where} chunk {number} was made under other CKKS parameters: {exc}"
                ) from exc
            raise InvalidUpdateError(
                f"{where} chunk {number} is not a CKKS ciphertext: {exc}"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidUpdateError(
                f"{where} chunk {number} is not a CKKS ciphertext: {exc}"
            ) from exc
        if vector.size() != size:
            raise InvalidUpdateError(
                f"{where} chunk {number} holds {vector.size()} values, expected {size}"
            )
        vectors.append(vector)
    return vectors


def _zero(ctx: PublicContext | SecretContext, size: int) -> ts.CKKSVector:
    """A cached encryption of ``size`` zeros under ``ctx`` (reference for compatibility checks)."""
    if size not in ctx._zeros:
        ctx._zeros[size] = ts.ckks_vector(ctx._ts, [0.0] * size)
    return ctx._zeros[size]
