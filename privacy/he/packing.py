"""How an update's values sit in CKKS slots: two real values per complex slot.

A CKKS plaintext of ring degree N holds N/2 *complex* slots (Cheon, Kim, Kim & Song 2017):
encoding, encryption, addition and decryption all work on complex numbers. TenSEAL's
``CKKSVector`` uses only the real part of each slot; an update here uses both, so one
ciphertext carries N values instead of N/2 and an update needs half the ciphertexts (half
the encryption, decryption and bytes on the wire). Sums stay exact slot by slot, because
complex addition adds the real and imaginary parts independently.

Layout: the flat vector (the check slot included) is cut into chunks of at most N values;
a chunk of ``m`` values is zero-padded to ``2k`` values, ``k = ceil(m / 2)``, and slot
``j < k`` holds ``value[j] + i * value[k + j]``. The ciphertext of a chunk is an ordinary
TenSEAL ``CKKSVector`` of size ``k`` (its serialization is TenSEAL's ``CKKSVectorProto``),
so the coordinator loads, checks and adds it exactly as any other; only a key holder's
decoder reads the imaginary parts (:mod:`privacy.he.secret.seal`).

Headroom: a slot's modulus is at most sqrt(2) times its larger part, and the polynomial
coefficients of an encoding are bounded by the largest slot modulus times the scale, so the
two bits of headroom in :attr:`~privacy.he.params.CKKSParams.max_abs_value` cover it.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = [
    "LAYOUT",
    "VALUES_PER_SLOT",
    "chunk_lengths",
    "layout_mismatch",
    "pack",
    "slots_for",
    "unpack",
    "vector_bytes",
]

#: Name of this layout on the wire (records and the byte form of an update carry it).
LAYOUT = "complex-pairs"
VALUES_PER_SLOT = 2


def layout_mismatch(found: object) -> str:
    """The error for an update in another layout (``None``: the one-value-per-slot layout
    of fedrisk before this one, which named none)."""
    if found is None:
        what = "the one-value-per-slot layout of an earlier fedrisk"
    else:
        what = f"layout {found!r}"
    return (
        f"encrypted update uses {what}; this version reads only {LAYOUT!r}: run the same "
        "fedrisk version at every participant"
    )


def chunk_lengths(total: int, slots: int) -> list[int]:
    """Values in each chunk of a vector of ``total`` values under ``slots`` slots per
    ciphertext."""
    per_chunk = VALUES_PER_SLOT * slots
    return [min(per_chunk, total - start) for start in range(0, total, per_chunk)]


def slots_for(values: int) -> int:
    """Slots (the ``CKKSVector`` size) that a chunk of ``values`` values occupies."""
    return -(-values // VALUES_PER_SLOT)


def pack(chunk: np.ndarray) -> np.ndarray:
    """One chunk of real values as ``slots_for(len(chunk))`` complex slot values."""
    k = slots_for(chunk.size)
    padded = np.zeros(VALUES_PER_SLOT * k, dtype=np.float64)
    padded[: chunk.size] = chunk
    return padded[:k] + 1j * padded[k:]


def unpack(slots: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` real values of one chunk from its decoded complex slots."""
    k = slots_for(length)
    z = np.asarray(slots[:k], dtype=np.complex128)
    return np.concatenate([z.real, z.imag])[:length]


def vector_bytes(seal_ciphertext: bytes, *, size: int, scale: float) -> bytes:
    """A SEAL ciphertext as the bytes of a TenSEAL ``CKKSVector`` of ``size`` slots.

    TenSEAL's ``CKKSVectorProto`` (tenseal/proto/tensors.proto): field 1 ``repeated uint32
    sizes`` (packed), field 2 ``repeated bytes ciphertexts``, field 3 ``double scale``.
    """
    sizes = _varint(size)
    return b"".join(
        [
            b"\x0a",
            _varint(len(sizes)),
            sizes,
            b"\x12",
            _varint(len(seal_ciphertext)),
            seal_ciphertext,
            b"\x19",
            struct.pack("<d", scale),
        ]
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
