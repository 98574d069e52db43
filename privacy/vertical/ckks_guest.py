"""The guest's side of the CKKS codec: it alone holds the secret key and decrypts.

Only the label holder imports this module (it loads :mod:`privacy.he.secret`). Decrypted
column sums are rounded before release (Li & Micciancio 2021: exact CKKS decryptions can
leak the secret key to whoever knows the ciphertexts, and the host made these).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DecryptionError, InvalidParametersError, InvalidUpdateError
from ..he.params import CKKSParams
from ..he.secret import SecretContext
from .codecs import VERTICAL_CKKS, load_vector, unpack_columns

__all__ = ["CKKSGuestCodec"]

#: Released sums are rounded to this many decimals (CKKS error here is ~1e-6 per slot).
RELEASE_DECIMALS = 5


class CKKSGuestCodec:
    """Guest side of CKKS: encrypts residual batches, opens masked column products."""

    name = "ckks"

    def __init__(
        self, params: CKKSParams = VERTICAL_CKKS, *, secret: SecretContext | None = None
    ) -> None:
        params = secret.params if secret is not None else params
        if len(params.coeff_mod_bit_sizes) < 4:
            raise InvalidParametersError(
                "vertical LR multiplies once and then adds masks: it needs at least two data "
                f"primes after the first (e.g. [60, 40, 40, 60]), got {params.coeff_mod_bit_sizes}"
            )
        self._secret = secret if secret is not None else SecretContext.generate(params)
        self.slots = params.slots
        self.decryptions = 0

    @property
    def secret(self) -> SecretContext:
        """The guest's key set (to keep in its own state folder between messages)."""
        return self._secret

    def public_material(self) -> bytes:
        return self._secret.public().serialize()

    def encrypt_residuals(self, residuals: np.ndarray) -> bytes:
        values = np.asarray(residuals, dtype=np.float64)
        if values.ndim != 1 or not 0 < values.size <= self.slots:
            raise InvalidParametersError(
                f"a residual batch is 1..{self.slots} values, got shape {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise InvalidParametersError("residuals must be finite")
        return self._secret._codec().encrypt(values)

    def open_column_sums(self, payload: bytes, *, rows: int, columns: int) -> np.ndarray:
        sums = np.empty(columns, dtype=np.float64)
        for j, part in enumerate(unpack_columns(payload, expected=columns)):
            vector = load_vector(self._secret._ts, part)
            if vector.size() != rows:
                raise InvalidUpdateError(
                    f"masked column {j} holds {vector.size()} values, not {rows}"
                )
            try:
                values = vector.decrypt()
            except (ValueError, RuntimeError, TypeError) as exc:
                raise DecryptionError(f"masked column {j} does not decrypt: {exc}") from exc
            sums[j] = math.fsum(values)
        self.decryptions += columns
        return np.round(sums, RELEASE_DECIMALS)
