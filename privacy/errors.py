"""Exceptions raised by the privacy package; :class:`PrivacyError` is the root.

Errors from TenSEAL and Opacus are translated into these at the package boundary
(``raise DecryptionError(...) from exc``), so callers never catch third-party types.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "ContextMismatchError",
    "DecryptionError",
    "InvalidParametersError",
    "InvalidUpdateError",
    "PSIError",
    "PrivacyError",
]


class PrivacyError(Exception):
    """Root of every error the privacy package raises."""


class BudgetExceededError(PrivacyError):
    """A charge would take a dataset's privacy budget over its epsilon limit."""


class DecryptionError(PrivacyError):
    """A ciphertext may not, or could not, be decrypted (too few contributors, wrong key)."""


class ContextMismatchError(PrivacyError):
    """A ciphertext was made under another key set or other encryption parameters."""


class InvalidParametersError(PrivacyError, ValueError):
    """An argument is out of range: CKKS parameters, DP parameters, budget settings."""


class InvalidUpdateError(PrivacyError, ValueError):
    """An encrypted update is malformed: wrong length, garbage bytes, inconsistent fields."""


class PSIError(PrivacyError, ValueError):
    """Private set intersection cannot go on: duplicate or malformed ids, mismatched id
    formats, an empty intersection, or a protocol message that is not what it claims."""
