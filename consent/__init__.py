"""Consent: grants as append-only events, stores, and the eligibility queries.

The full registry (receipts, signed assertions, the scoring dependency, the evidence ledger)
builds on the :class:`ConsentStore` seam defined here.
"""

from __future__ import annotations

from consent.errors import (
    ConsentError,
    GrantAlreadyWithdrawnError,
    InvalidGrantError,
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
from consent.store import ConsentStore, SQLAlchemyConsentStore, SQLiteConsentStore

__all__ = [
    "EXCLUSION_REASONS",
    "PURPOSES",
    "ConsentError",
    "ConsentStore",
    "Grant",
    "GrantAlreadyWithdrawnError",
    "GrantEvent",
    "GrantId",
    "GrantState",
    "InMemoryConsentStore",
    "InvalidGrantError",
    "SQLAlchemyConsentStore",
    "SQLiteConsentStore",
    "SubjectId",
    "UnknownGrantError",
    "current_grants",
]
