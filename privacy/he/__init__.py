"""CKKS homomorphic encryption of model updates (TenSEAL): the public side only.

Everything importable from here is safe for the coordinator: :class:`PublicContext`,
:class:`CKKSParams`, :class:`EncryptedUpdate`, :func:`validate_update`,
:func:`sum_encrypted` and the Flower record codec. Secret material (``SecretContext``,
``encrypt_update``, ``decrypt_aggregate``, ``provision_keys``) is imported explicitly from
:mod:`privacy.he.secret`, by participants only; importing this package never loads it.
"""

from __future__ import annotations

from .params import MAX_COEFF_MODULUS_BITS, CKKSParams
from .public import CKKSContext, PublicContext
from .records import record_to_update, update_to_record
from .updates import (
    CHECK_TOLERANCE,
    MAX_CONTRIBUTORS,
    EncryptedSum,
    EncryptedUpdate,
    sum_encrypted,
    validate_update,
)

__all__ = [
    "CHECK_TOLERANCE",
    "CKKSContext",
    "CKKSParams",
    "EncryptedSum",
    "EncryptedUpdate",
    "MAX_COEFF_MODULUS_BITS",
    "MAX_CONTRIBUTORS",
    "PublicContext",
    "record_to_update",
    "sum_encrypted",
    "update_to_record",
    "validate_update",
]
