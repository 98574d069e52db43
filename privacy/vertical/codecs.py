"""How the residual and the host's gradient travel in vertical logistic regression.

One protocol (:mod:`privacy.vertical.lr`), three codecs, so that the benchmark compares the
schemes on the very same steps:

- :class:`CKKSGuestCodec` / :class:`CKKSHostCodec`: the guest encrypts a whole batch of
  residuals in one CKKS ciphertext (N/2 slots); the host multiplies it by each of its
  feature columns (ciphertext-plaintext products, no rotation keys) and adds a fresh uniform mask
  to every slot; the guest decrypts and sums each column. The guest sees only masked
  values; the host never holds a secret key.
- :class:`PaillierGuestCodec` / :class:`PaillierHostCodec` (``phe``, as FATE uses): one
  ciphertext per residual; the host forms Enc(Σ_i d_i x_ij + r_j) by scalar products and
  additions. Benchmarks only.
- :class:`PlainCodec`: no encryption at all (the host sees residuals): the baseline that
  shows what the cryptography costs. Benchmarks and tests only.

Guest codecs turn residuals into bytes and masked results back into column sums; host
codecs turn (bytes, features) into masked bytes plus the mask total they must subtract.
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import tenseal as ts

from ..errors import InvalidParametersError, InvalidUpdateError, PrivacyError
from ..he.params import CKKSParams
from ..he.public import PublicContext

__all__ = [
    "VERTICAL_CKKS",
    "CKKSHostCodec",
    "GuestCodec",
    "HostCodec",
    "MaskedColumns",
    "PlainCodec",
]

#: One ciphertext-plaintext product, then masks: a second data prime keeps room for them.
VERTICAL_CKKS = CKKSParams(poly_modulus_degree=8192, coeff_mod_bit_sizes=(60, 40, 40, 60))
#: Masks are uniform in [-2**MASK_BITS, 2**MASK_BITS]: a product |d·x| <= A is hidden up to
#: statistical distance A / 2**MASK_BITS per value, and sums stay exact to ~1e-6.
MASK_BITS = 32


@dataclass(frozen=True)
class MaskedColumns:
    """The host's answer: masked column products (codec bytes) and, kept at the host, the
    total mask per column it subtracts from the guest's sums."""

    payload: bytes
    mask_totals: np.ndarray


class GuestCodec(Protocol):
    name: str

    def public_material(self) -> bytes:
        """What a host needs to compute on the guest's ciphertexts (no secret)."""
        ...

    def encrypt_residuals(self, residuals: np.ndarray) -> bytes: ...

    def open_column_sums(self, payload: bytes, *, rows: int, columns: int) -> np.ndarray: ...


class HostCodec(Protocol):
    name: str

    def masked_columns(self, payload: bytes, features: np.ndarray) -> MaskedColumns: ...


def _masks(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform masks from the OS's CSPRNG (53 random bits scaled to [-2^k, 2^k])."""
    raw = np.frombuffer(secrets.token_bytes(8 * int(np.prod(shape))), dtype=np.uint64)
    unit = (raw >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return ((unit * 2.0 - 1.0) * float(2**MASK_BITS)).reshape(shape)


# --- CKKS ------------------------------------------------------------------------------


class CKKSHostCodec:
    """Host side of CKKS: public context only; products and masks, never decryption."""

    name = "ckks"

    def __init__(self, public_material: bytes) -> None:
        self._public = PublicContext.from_bytes(public_material)

    @property
    def slots(self) -> int:
        return self._public.params.slots

    def masked_columns(self, payload: bytes, features: np.ndarray) -> MaskedColumns:
        rows, columns = features.shape
        if rows > self.slots:
            raise InvalidParametersError(f"a batch holds at most {self.slots} rows, got {rows}")
        vector = self._public.load_ciphertext(payload)
        if vector.size() != rows:
            raise InvalidUpdateError(
                f"residual ciphertext holds {vector.size()} values, batch has {rows}"
            )
        masks = _masks((columns, rows))
        parts = []
        try:
            for j in range(columns):
                product = vector * features[:, j].tolist()
                product += masks[j].tolist()
                parts.append(product.serialize())
        except (ValueError, RuntimeError, TypeError) as exc:
            raise PrivacyError(f"CKKS product with the host's features failed: {exc}") from exc
        return MaskedColumns(_pack(parts), masks.sum(axis=1))


# --- plaintext baseline ----------------------------------------------------------------


class PlainCodec:
    """No encryption: residuals and sums in the clear (baseline only; hides nothing)."""

    name = "plain"

    def public_material(self) -> bytes:
        return b""

    def encrypt_residuals(self, residuals: np.ndarray) -> bytes:
        return np.asarray(residuals, dtype=np.float64).tobytes()

    def masked_columns(self, payload: bytes, features: np.ndarray) -> MaskedColumns:
        residuals = np.frombuffer(payload, dtype=np.float64)
        masks = _masks((features.shape[1],))
        return MaskedColumns((features.T @ residuals + masks).tobytes(), masks)

    def open_column_sums(self, payload: bytes, *, rows: int, columns: int) -> np.ndarray:
        sums = np.frombuffer(payload, dtype=np.float64)
        if sums.size != columns:
            raise InvalidUpdateError(f"expected {columns} column sums, got {sums.size}")
        return sums.copy()


# --- framing ---------------------------------------------------------------------------


def _pack(parts: Sequence[bytes]) -> bytes:
    """Length-prefixed concatenation of byte strings."""
    header = json.dumps([len(p) for p in parts]).encode()
    return struct.pack(">I", len(header)) + header + b"".join(parts)


def _unpack(data: bytes, *, expected: int) -> list[bytes]:
    try:
        (size,) = struct.unpack(">I", data[:4])
        lengths = json.loads(data[4 : 4 + size])
        if not isinstance(lengths, list) or not all(isinstance(n, int) for n in lengths):
            raise ValueError("bad header")
    except (struct.error, ValueError) as exc:
        raise InvalidUpdateError(f"malformed masked-columns payload: {exc}") from exc
    if len(lengths) != expected:
        raise InvalidUpdateError(f"expected {expected} masked columns, got {len(lengths)}")
    parts, offset = [], 4 + size
    for n in lengths:
        parts.append(data[offset : offset + n])
        offset += n
    if offset != len(data) or any(len(p) == 0 for p in parts):
        raise InvalidUpdateError("masked-columns payload is truncated or has trailing bytes")
    return parts


def unpack_columns(data: bytes, *, expected: int) -> list[bytes]:
    """The per-column ciphertexts of a :class:`MaskedColumns` payload."""
    return _unpack(data, expected=expected)


def load_vector(context: ts.Context, data: bytes) -> ts.CKKSVector:
    """A serialized CKKS vector under ``context``; garbage is an InvalidUpdateError."""
    try:
        return ts.ckks_vector_from(context, data)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise InvalidUpdateError(f"not a CKKS ciphertext of this key set: {exc}") from exc
