"""Privacy mechanisms of fedrisk: differential privacy (``privacy.dp``), CKKS (``privacy.he``)
and private set intersection (``privacy.psi``).

This package imports neither ``coordinator``, ``participants`` nor ``consent``. Only the
error types are re-exported here; import mechanisms from their subpackages.
"""

from __future__ import annotations

from .errors import (
    BudgetExceededError,
    ContextMismatchError,
    DecryptionError,
    InvalidParametersError,
    InvalidUpdateError,
    PrivacyError,
    PSIError,
)

__all__ = [
    "BudgetExceededError",
    "ContextMismatchError",
    "DecryptionError",
    "InvalidParametersError",
    "InvalidUpdateError",
    "PSIError",
    "PrivacyError",
]
