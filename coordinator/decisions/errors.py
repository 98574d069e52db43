"""Errors of the decision engine: one root, :class:`DecisionError`, and its kinds."""

from __future__ import annotations

__all__ = ["ApplicationError", "DecisionError", "PolicyError", "ReplayError"]


class DecisionError(Exception):
    """Root of every error the decision engine raises on purpose."""


class PolicyError(DecisionError, ValueError):
    """A decision policy file is malformed; names the file and the key."""

    def __init__(self, *, file: str, key: str | None, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {reason}")


class ApplicationError(DecisionError, ValueError):
    """An applications file is malformed; names the file, the row (CSV line) and column."""

    def __init__(self, *, file: str, row: int | None, column: str | None, reason: str) -> None:
        self.file = file
        self.row = row
        self.column = column
        where = file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")


class ReplayError(DecisionError):
    """A ledger's decisions cannot be replayed (a policy they name is not in the ledger)."""
