"""The consent registry: the grant log, each grant's receipt, and its evidence in the ledger.

Every grant and withdrawal goes first to the consent store (the source of truth for
decisions) and then, as a hash-and-pseudonym entry with the receipt's hash, to the evidence
ledger. Two databases cannot share one transaction, so :meth:`ConsentRegistry.reconcile`
(run on opening) appends to the ledger any event a crash left out: nothing recorded is ever
missing from the evidence for long, and nothing is recorded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent.eligibility import ConsentDecision
from consent.grants import GrantEvent, GrantState
from consent.ledger.entries import Pseudonymizer, consent_event_entry
from consent.ledger.log import EvidenceLog
from consent.receipts import Controller, receipt_for, receipt_hash
from consent.store import ConsentStore, SQLiteConsentStore

__all__ = ["ConsentRegistry", "Recorded"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """A recorded consent event, its ledger evidence and (for a grant) its receipt."""

    event: GrantEvent
    evidence_id: str
    receipt: dict[str, Any] | None = None


class ConsentRegistry:
    """Grants, withdrawals, receipts and consent decisions, with evidence for each event."""

    def __init__(
        self,
        store: ConsentStore,
        ledger: EvidenceLog,
        *,
        pseudonym: Pseudonymizer,
        controller: Controller,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.pseudonym = pseudonym
        self.controller = controller
        self.reconcile()

    @classmethod
    def in_folder(
        cls,
        folder: Path | str,
        *,
        controller: Controller,
        ledger_dir: Path | None = None,
        store: ConsentStore | None = None,
    ) -> ConsentRegistry:
        """The embedded default: ``consent.db`` (SQLite) in ``folder`` (or ``store``, e.g. a
        PostgreSQL one) and the ledger in ``ledger_dir`` (default ``folder/ledger``)."""
        folder = Path(folder)
        ledger_dir = ledger_dir or folder / "ledger"
        return cls(
            store or SQLiteConsentStore(folder / "consent.db"),
            EvidenceLog.in_folder(ledger_dir),
            pseudonym=Pseudonymizer.in_folder(ledger_dir),
            controller=controller,
        )

    def close(self) -> None:
        self.store.close()
        self.ledger.close()

    def __enter__(self) -> ConsentRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receipt(self, grant_id: str) -> dict[str, Any]:
        """The Kantara receipt of a grant (rebuilt; its hash is in the ledger)."""
        return self._receipt(self.store.state(grant_id))

    def _receipt(self, state: GrantState) -> dict[str, Any]:
        at = state.granted_at or state.grant.starts_at
        return receipt_for(state.grant, self.controller, recorded_at_s=int(at.timestamp()))

    def grant(
        self,
        *,
        subject_id: str,
        institution: str,
        purpose: str,
        categories: Iterable[str],
        starts_at: datetime,
        expires_at: datetime | None,
        evidence_hash: str,
        channel: str,
        recorded_at: datetime | None = None,
    ) -> Recorded:
        """Record a grant; return its event, its evidence id and its receipt."""
        recorded_at = recorded_at or datetime.now(UTC)
        grant = self.store.grant(
            subject_id=subject_id,
            institution=institution,
            purpose=purpose,
            categories=categories,
            starts_at=starts_at,
            expires_at=expires_at,
            evidence_hash=evidence_hash,
            channel=channel,
            recorded_at=recorded_at,
        )
        event = GrantEvent.granted(grant, at=recorded_at)
        receipt = self._receipt(GrantState(grant=grant, granted_at=recorded_at))
        return Recorded(event, self._evidence(event), receipt)

    def withdraw(self, grant_id: str, *, at: datetime | None = None) -> Recorded:
        """Withdraw a grant from ``at`` (default now) in one call; not retroactive."""
        event = self.store.withdraw(grant_id, at=at or datetime.now(UTC))
        return Recorded(event, self._evidence(event))

    def grants_of(self, subject_id: str) -> list[GrantState]:
        return self.store.subject_states(subject_id)

    def state(self, grant_id: str) -> GrantState:
        return self.store.state(grant_id)

    def decide(
        self,
        subject_id: str,
        *,
        purpose: str,
        categories: Iterable[str],
        at: datetime,
        institution: str | None = None,
    ) -> ConsentDecision:
        return self.store.decide(
            subject_id, purpose=purpose, categories=categories, at=at, institution=institution
        )

    def _entry(self, event: GrantEvent) -> dict[str, Any]:
        receipt = None
        if event.grant is not None:
            receipt = self._receipt(GrantState(grant=event.grant, granted_at=event.at))
        return consent_event_entry(
            event,
            pseudonym=self.pseudonym,
            receipt_hash=None if receipt is None else receipt_hash(receipt),
        )

    def _evidence(self, event: GrantEvent) -> str:
        return self.ledger.append(self._entry(event)).evidence_id

    def reconcile(self) -> int:
        """Append to the ledger every consent event it lacks; return how many."""
        if self.ledger.count_of_kind("consent_event") == self.store.event_count():
            return 0
        logged = {(b["grant_id"], b["event"]) for b in self.ledger.bodies_of_kind("consent_event")}
        missing = [e for e in self.store.events() if (e.grant_id, e.kind) not in logged]
        bodies = [self._entry(event) for event in missing]
        if bodies:
            self.ledger.append_many(bodies)
        logger.warning("ledger was missing %d consent events; appended them", len(bodies))
        return len(bodies)
