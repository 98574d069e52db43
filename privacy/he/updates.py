"""Encrypted model updates on the public side: the wire type, validation and summing.

A participant encrypts its (already weighted) update with
:func:`privacy.he.secret.encrypt_update`; the coordinator checks each update with
:func:`validate_update` and adds the valid ones with :func:`sum_encrypted` using only a
:class:`~privacy.he.public.PublicContext`; a key holder decrypts the sum with
:func:`privacy.he.secret.decrypt_aggregate` (DESIGN.md, privacy mode ``he``).

A vector of any length is cut into chunks of N values, two per complex slot
(:mod:`privacy.he.packing`), one TenSEAL ``CKKSVector`` per chunk, serialized
independently so that a bad chunk is named precisely. One *check value* is appended after
the values: every participant encrypts
``check_value`` (1.0) there, so the decrypted sum must hold ``contributors · check_value``.
A wrong secret key decrypts to huge random values and fails that check, and so does
an aggregate that does not hold exactly the claimed number of contributions (such as a
single update presented as an aggregate). It detects mistakes under the honest-but-curious
threat model; it is no defence against a malicious coordinator, which can forge ciphertexts.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import tenseal as ts

from ..errors import ContextMismatchError, InvalidParametersError, InvalidUpdateError
from .packing import chunk_lengths, layout_mismatch, slots_for
from .public import CKKSContext

__all__ = [
    "CHECK_TOLERANCE",
    "EncryptedUpdate",
    "MAX_CONTRIBUTORS",
    "sum_encrypted",
    "validate_update",
]

logger = logging.getLogger(__name__)

#: Sums of up to this many updates cannot overflow: each value must stay below
#: ``params.max_abs_value / MAX_CONTRIBUTORS``.
MAX_CONTRIBUTORS = 1024
#: Largest accepted |decrypted check slot - contributors * check_value| (CKKS error ~1e-9).
CHECK_TOLERANCE = 1e-3

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_WIRE_MAGIC = b"fedrisk-ckks-update/2\n"
#: The byte form before complex packing (one value per slot): refused with its own message.
_OLD_WIRE_MAGIC = b"fedrisk-ckks-update/1\n"
_HEADER = struct.Struct(">64sQBdI")  # fingerprint, length, has check slot, check value, chunks
_CHUNK_SIZE = struct.Struct(">I")


@dataclass(frozen=True)
class EncryptedUpdate:
    """A flat vector of ``length`` values encrypted as CKKS ciphertext chunks.

    ``fingerprint`` names the key set (see :attr:`CKKSContext.fingerprint`);
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
        if bytes(view[: len(_OLD_WIRE_MAGIC)]) == _OLD_WIRE_MAGIC:
            raise InvalidUpdateError(layout_mismatch(None))
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


def validate_update(ctx: CKKSContext, update: EncryptedUpdate, *, expected_length: int) -> None:
    """Check one update before summing: key set, length, and that every chunk parses under
    ``ctx`` and can be added to a ciphertext of this context (same parameters and scale).

    Raises :class:`ContextMismatchError` (other key set or parameters) or
    :class:`InvalidUpdateError` (a ``ValueError``: wrong length, garbage bytes).
    """
    _check_context(ctx)
    if isinstance(expected_length, bool) or not isinstance(expected_length, numbers.Integral):
        raise InvalidParametersError(f"expected_length must be an int, got {expected_length!r}")
    _check_update(ctx, update, where="update", expected_length=int(expected_length))
    for number, vector in enumerate(_load_chunks(ctx, update, where="update")):
        zeros = ctx.encrypted_zeros(vector.size())
        try:
            zeros + vector
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ContextMismatchError(
                f"update chunk {number} cannot be added under this context: {exc}"
            ) from exc


def sum_encrypted(ctx: CKKSContext, updates: Sequence[EncryptedUpdate]) -> EncryptedUpdate:
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
    total = _load_chunks(ctx, first, where="update 0")
    for index, update in enumerate(items[1:], start=1):
        for number, vector in enumerate(_load_chunks(ctx, update, where=f"update {index}")):
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


class EncryptedSum:
    """A running homomorphic sum that checks and parses each update exactly once.

    ``add`` rejects a bad update (other key set, wrong length, garbage, not addable) with
    the same errors as :func:`validate_update` and leaves the running total untouched, so
    the coordinator can drop one participant and keep aggregating the others.
    """

    def __init__(self, ctx: CKKSContext, *, expected_length: int) -> None:
        _check_context(ctx)
        if isinstance(expected_length, bool) or not isinstance(expected_length, numbers.Integral):
            raise InvalidParametersError(f"expected_length must be an int, got {expected_length!r}")
        self._ctx: CKKSContext = ctx
        self._length: int = int(expected_length)
        self._total: list[ts.CKKSVector] | None = None
        self._check_value: float | None = None
        self.count: int = 0

    def add(self, update: EncryptedUpdate, *, where: str = "update") -> None:
        """Check ``update`` and add it to the total; on any error the total is unchanged."""
        _check_update(self._ctx, update, where=where, expected_length=self._length)
        if self._total is not None and update.check_value != self._check_value:
            raise InvalidUpdateError(
                f"{where} has check value {update.check_value}, expected {self._check_value}"
            )
        vectors = _load_chunks(self._ctx, update, where=where)
        if self._total is None:
            zeros = [self._ctx.encrypted_zeros(v.size()) for v in vectors]
            base = zeros
        else:
            base = self._total
        try:
            added = [b + v for b, v in zip(base, vectors, strict=True)]
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ContextMismatchError(
                f"{where} cannot be added under this context: {exc}"
            ) from exc
        self._total = added
        self._check_value = update.check_value
        self.count += 1

    def result(self) -> EncryptedUpdate:
        """The sum of every accepted update."""
        if self._total is None:
            raise InvalidParametersError("no update was added to the sum")
        return EncryptedUpdate(
            chunks=tuple(v.serialize() for v in self._total),
            length=self._length,
            fingerprint=self._ctx.fingerprint,
            check_value=self._check_value,
        )


def _check_context(ctx: object) -> None:
    if not isinstance(ctx, CKKSContext):
        raise InvalidParametersError(f"expected a CKKS context, got {type(ctx).__name__}")


def _chunk_sizes(update: EncryptedUpdate, slots: int) -> list[int]:
    """Slots each chunk of ``update`` occupies (:mod:`privacy.he.packing`)."""
    total = update.length + (0 if update.check_value is None else 1)
    return [slots_for(n) for n in chunk_lengths(total, slots)]


def _check_update(
    ctx: CKKSContext,
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


def _load_chunks(ctx: CKKSContext, update: EncryptedUpdate, *, where: str) -> list[ts.CKKSVector]:
    """Deserialize every chunk under ``ctx`` and check its slot count."""
    vectors = []
    for number, (chunk, size) in enumerate(
        zip(update.chunks, _chunk_sizes(update, ctx.params.slots), strict=True)
    ):
        try:
            vector = ctx.load_ciphertext(chunk)
        except (ContextMismatchError, InvalidUpdateError) as exc:
            raise type(exc)(f"{where} chunk {number} {exc}") from exc
        if vector.size() != size:
            raise InvalidUpdateError(
                f"{where} chunk {number} holds {vector.size()} values, expected {size}"
            )
        vectors.append(vector)
    return vectors
