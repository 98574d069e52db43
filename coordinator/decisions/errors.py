"""Errors of the decision engine: one root, :class:`DecisionError`, and its kinds. A bad
file is also the ``models`` error for its kind, so it reads (file, key or row and column)
like every other bad file the platform reports."""

from __future__ import annotations

from models.errors import ConfigFileError, DataError

__all__ = ["ApplicationError", "DecisionError", "PolicyError"]


class DecisionError(Exception):
    """Root of every error the decision engine raises on purpose."""


class PolicyError(DecisionError, ConfigFileError):
    """A decision policy file is malformed; names the file and the key."""


class ApplicationError(DecisionError, DataError):
    """An applications file is malformed; names the file, the row (CSV line) and column."""
