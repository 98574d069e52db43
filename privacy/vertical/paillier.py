"""Paillier (``phe``, the scheme FATE's vertical LR uses) for the same protocol: one
ciphertext per residual. Used by the benchmarks only, to measure what CKKS batching saves.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import InvalidUpdateError
from .codecs import MaskedColumns, _masks

__all__ = ["PaillierGuestCodec", "PaillierHostCodec"]


class PaillierGuestCodec:
    """Guest side: a Paillier key pair (``n_length`` bits); encrypts each residual."""

    name = "paillier"

    def __init__(self, *, n_length: int = 2048) -> None:
        from phe import paillier

        self._public, self._private = paillier.generate_paillier_keypair(n_length=n_length)

    def public_material(self) -> bytes:
        return str(self._public.n).encode()

    def encrypt_residuals(self, residuals: np.ndarray) -> bytes:
        encrypted = [self._public.encrypt(float(v)) for v in residuals]
        return _dump([(c.ciphertext(be_secure=False), c.exponent) for c in encrypted])

    def open_column_sums(self, payload: bytes, *, rows: int, columns: int) -> np.ndarray:
        from phe import paillier

        pairs = _load(payload)
        if len(pairs) != columns:
            raise InvalidUpdateError(f"expected {columns} column sums, got {len(pairs)}")
        numbers = [paillier.EncryptedNumber(self._public, c, e) for c, e in pairs]
        return np.array([self._private.decrypt(x) for x in numbers], dtype=np.float64)


class PaillierHostCodec:
    """Host side: Enc(Σ_i d_i x_ij + r_j) by scalar products and additions of ciphertexts."""

    name = "paillier"

    def __init__(self, public_material: bytes) -> None:
        from phe import paillier

        self._public = paillier.PaillierPublicKey(int(public_material.decode()))

    def masked_columns(self, payload: bytes, features: np.ndarray) -> MaskedColumns:
        from phe import paillier

        residuals = [paillier.EncryptedNumber(self._public, c, e) for c, e in _load(payload)]
        masks = _masks((features.shape[1],))
        out = []
        for j in range(features.shape[1]):
            column = features[:, j]
            total = residuals[0] * float(column[0])
            for d, x in zip(residuals[1:], column[1:], strict=True):
                total = total + d * float(x)
            total = total + float(masks[j])
            out.append((total.ciphertext(be_secure=True), total.exponent))
        return MaskedColumns(_dump(out), masks)


def _dump(pairs: list[tuple[int, int]]) -> bytes:
    return json.dumps([[str(c), e] for c, e in pairs]).encode()


def _load(payload: bytes) -> list[tuple[int, int]]:
    try:
        return [(int(c), int(e)) for c, e in json.loads(payload)]
    except (ValueError, TypeError) as exc:
        raise InvalidUpdateError(f"malformed Paillier payload: {exc}") from exc
