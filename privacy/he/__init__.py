"""CKKS homomorphic encryption of model updates (TenSEAL): parameters, keys, vectors.

The coordinator needs only :class:`PublicContext`, :func:`validate_update` and
:func:`sum_encrypted`; :class:`SecretContext`, :func:`encrypt_update`,
:func:`decrypt_aggregate` and :func:`provision_keys` belong to the participants.
"""

from __future__ import annotations

from .context import KeyProvision, PublicContext, SecretContext, provision_keys
from .params import MAX_COEFF_MODULUS_BITS, CKKSParams
from .records import record_to_update, update_to_record
from .vector import (
    CHECK_TOLERANCE,
    MAX_CONTRIBUTORS,
    EncryptedUpdate,
    decrypt_aggregate,
    encrypt_update,
    sum_encrypted,
    validate_update,
)

__all__ = [
    "CHECK_TOLERANCE",
    "CKKSParams",
    "EncryptedUpdate",
    "KeyProvision",
    "MAX_COEFF_MODULUS_BITS",
    "MAX_CONTRIBUTORS",
    "PublicContext",
    "SecretContext",
    "decrypt_aggregate",
    "encrypt_update",
    "provision_keys",
    "record_to_update",
    "sum_encrypted",
    "update_to_record",
    "validate_update",
]
