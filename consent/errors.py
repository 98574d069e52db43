"""Exceptions raised by the consent package; :class:`ConsentError` is the root."""

from __future__ import annotations

__all__ = [
    "ConsentError",
    "GrantAlreadyWithdrawnError",
    "InvalidGrantError",
    "LedgerError",
    "PurgedEvidenceError",
    "UnknownEvidenceError",
    "UnknownGrantError",
]


class ConsentError(Exception):
    """Root of every error the consent package raises."""


class InvalidGrantError(ConsentError, ValueError):
    """A grant, an event or a query argument is malformed (bad purpose, naive datetime, ...)."""


class UnknownGrantError(ConsentError, KeyError):
    """An operation names a grant id that the store has never recorded."""


class GrantAlreadyWithdrawnError(ConsentError):
    """A grant was withdrawn twice; withdrawal is a single, final event."""


class LedgerError(ConsentError):
    """The evidence ledger cannot be opened, written or read as asked."""


class UnknownEvidenceError(LedgerError, KeyError):
    """An evidence id names no entry of this ledger."""


class PurgedEvidenceError(UnknownEvidenceError):
    """The entry an evidence id names was purged at the end of its retention period."""
