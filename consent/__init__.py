"""Consent: grants as append-only events, stores, decisions, receipts and evidence.

:class:`ConsentRegistry` records grants and withdrawals in a :class:`ConsentStore` with a
Kantara receipt (:mod:`consent.receipts`) and an entry in the evidence ledger
(:mod:`consent.ledger`); signed consent assertions (:mod:`consent.assertions`) carry a
decision to the participants.
"""

from __future__ import annotations

from consent.eligibility import ConsentDecision
from consent.errors import (
    ConsentError,
    GrantAlreadyWithdrawnError,
    InvalidGrantError,
    LedgerError,
    UnknownEvidenceError,
    UnknownGrantError,
)
from consent.grants import (
    EXCLUSION_REASONS,
    PURPOSES,
    Grant,
    GrantEvent,
    GrantId,
    GrantState,
    SubjectId,
    current_grants,
)
from consent.memory_store import InMemoryConsentStore
from consent.receipts import Controller
from consent.registry import ConsentRegistry, Recorded
from consent.store import ConsentStore, SQLAlchemyConsentStore, SQLiteConsentStore

__all__ = [
    "EXCLUSION_REASONS",
    "PURPOSES",
    "ConsentDecision",
    "ConsentError",
    "ConsentRegistry",
    "ConsentStore",
    "Controller",
    "Grant",
    "GrantAlreadyWithdrawnError",
    "GrantEvent",
    "GrantId",
    "GrantState",
    "InMemoryConsentStore",
    "InvalidGrantError",
    "LedgerError",
    "Recorded",
    "SQLAlchemyConsentStore",
    "SQLiteConsentStore",
    "SubjectId",
    "UnknownEvidenceError",
    "UnknownGrantError",
    "current_grants",
]
