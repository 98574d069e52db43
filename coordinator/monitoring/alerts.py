"""From a factory node's change event to a lender's alert.

:meth:`AlertDesk.receive` takes one event (what changed, since when, by how much) from the
node that raised it, and:

1. finds the open loan on the event's firm at that factory (none: :class:`NoLoanError`,
   no alert);
2. checks the firm's consent to the lender (``credit_scoring`` of the IoT model's data
   categories): without it the event is refused (:class:`RefusedError`), the refusal is
   evidenced in the ledger, and nothing of the event is kept or sent;
3. appends a ``monitoring_alert`` entry to the evidence ledger (the firm's pseudonym and
   the event's figures; its evidence id is the alert's id);
4. queues the alert for the lender's webhook (signed, retried: :mod:`.webhooks`) and keeps
   it for ``GET /v1/alerts``.

An event the node sends again (after a lost answer or a crash) yields the same alert: the
event id is the key, in the same database as the loan book.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from consent.ledger import EvidenceLog
from consent.ledger.entries import utc_timestamp
from consent.registry import ConsentRegistry

from .loans import LoanBook
from .webhooks import Outbox

__all__ = [
    "ALERT_EVENT",
    "ALERT_KIND",
    "MONITORED_MODEL",
    "Alert",
    "AlertDesk",
    "MonitoringError",
    "NoLoanError",
    "RefusedError",
]

ALERT_KIND: Final = "monitoring_alert"
#: The model whose data categories a monitored firm's consent must cover.
MONITORED_MODEL: Final = "iot_risk"
#: The webhook event type of an alert.
ALERT_EVENT: Final = "monitoring.alert"
_PURPOSE: Final = "credit_scoring"


class MonitoringError(Exception):
    """An event that gives no alert; ``reason`` is the API's reason code."""

    reason = "monitoring_error"


class NoLoanError(MonitoringError):
    reason = "no_loan"


class RefusedError(MonitoringError):
    def __init__(self, reason: str, evidence_id: str) -> None:
        self.reason = reason
        self.evidence_id = evidence_id
        super().__init__(
            f"the firm's consent is not in force ({reason}): no alert (evidence {evidence_id})"
        )


@dataclass(frozen=True)
class Alert:
    """An alert as the lender sees it (API and webhook)."""

    alert_id: str
    institution: str
    body: Mapping[str, Any]
    duplicate: bool = False


class AlertBook:
    """The alerts raised, by event id and by institution (table ``alerts`` of the
    monitoring database)."""

    def __init__(self, database: Path) -> None:
        self._db = sqlite3.connect(database, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS alerts (event_id TEXT PRIMARY KEY, alert_id TEXT, "
                "institution TEXT, received_at TEXT, body TEXT)"
            )
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS alerts_institution ON alerts (institution)"
            )

    def close(self) -> None:
        self._db.close()

    def put(self, *, event_id: str, alert: Alert, received_at: datetime) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?)",
                (
                    event_id,
                    alert.alert_id,
                    alert.institution,
                    received_at.isoformat(),
                    json.dumps(dict(alert.body)),
                ),
            )

    def alerts(
        self, institution: str, *, after: str | None = None, limit: int = 100
    ) -> list[Alert]:
        """``institution``'s alerts in arrival order, after the alert ``after`` if given."""
        start = 0
        if after is not None:
            row = self._db.execute(
                "SELECT rowid FROM alerts WHERE alert_id = ? AND institution = ?",
                (after, institution),
            ).fetchone()
            start = row[0] if row else 0
        rows = self._db.execute(
            "SELECT alert_id, institution, body FROM alerts WHERE institution = ? AND rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (institution, start, limit),
        )
        return [Alert(alert_id=a, institution=i, body=json.loads(b)) for a, i, b in rows]

    def alert(self, alert_id: str) -> Alert | None:
        row = self._db.execute(
            "SELECT alert_id, institution, body FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else Alert(row[0], row[1], json.loads(row[2]))

    def of_event(self, event_id: str) -> Alert | None:
        row = self._db.execute(
            "SELECT alert_id, institution, body FROM alerts WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else Alert(row[0], row[1], json.loads(row[2]), duplicate=True)


class AlertDesk:
    """Alerts over one ledger, consent registry, loan book and webhook outbox."""

    def __init__(
        self,
        *,
        ledger: EvidenceLog,
        consent: ConsentRegistry,
        loans: LoanBook,
        outbox: Outbox,
        categories: Iterable[str],
        model: str,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.consent = consent
        self.loans = loans
        self.outbox = outbox
        self.categories = tuple(sorted(categories))
        self.model = model
        self._notify = notify
        self.book = AlertBook(loans.path)

    def close(self) -> None:
        self.book.close()

    def set_notify(self, notify: Callable[[], None] | None) -> None:
        """Called after an alert is queued (wakes the webhook deliverer)."""
        self._notify = notify

    def receive(self, event: Mapping[str, Any], *, reporter: str, at: datetime) -> Alert:
        """One change event of ``reporter``'s factory (see the module docstring)."""
        known = self.book.of_event(str(event["event_id"]))
        if known is not None:
            return known
        factory = str(event["factory"])
        detected = _day(event["detected_at"])
        subject_id = str(event["subject_id"])
        loan = self.loans.open_loan(factory, subject_id, detected)
        if loan is None:
            raise NoLoanError(
                f"no open loan on firm {subject_id!r} at factory {factory!r} on {detected}: "
                "no alert"
            )
        decision = self.consent.decide(
            loan.subject_id,
            purpose=_PURPOSE,
            categories=self.categories,
            at=at,
            institution=loan.institution,
        )
        subject = self.consent.pseudonym(loan.subject_id)
        if not decision.allowed:
            reason = decision.reason or "never_granted"
            refusal = {
                "kind": ALERT_KIND,
                "outcome": "refused",
                "reason": reason,
                "subject": subject,
                "loan_id": loan.loan_id,
                "institution": loan.institution,
                "at": utc_timestamp(at),
            }
            raise RefusedError(reason, self.ledger.append(refusal).evidence_id)
        figures = {
            key: event.get(key)
            for key in (
                "indicator",
                "detector",
                "since",
                "detected_at",
                "before",
                "after",
                "change",
                "unit",
                "text",
                "score_before",
                "score_after",
                "model_version",
            )
        }
        entry = {
            "kind": ALERT_KIND,
            "outcome": "alert",
            "subject": subject,
            "loan_id": loan.loan_id,
            "institution": loan.institution,
            "factory": factory,
            "event_id": str(event["event_id"]),
            "grant_id": decision.grant_id,
            **figures,
            "at": utc_timestamp(at),
        }
        evidence = self.ledger.append(entry).evidence_id
        body = {
            "alert_id": evidence,
            "event_id": entry["event_id"],
            "loan_id": loan.loan_id,
            "subject_id": loan.subject_id,
            "factory": factory,
            "model": self.model,
            **figures,
            "received_at": at.isoformat(),
        }
        alert = Alert(alert_id=evidence, institution=loan.institution, body=body)
        self.book.put(event_id=str(event["event_id"]), alert=alert, received_at=at)
        self.outbox.enqueue(
            institution=loan.institution, event_type=ALERT_EVENT, payload=body, message_id=evidence
        )
        if self._notify is not None:
            self._notify()
        return alert


def _day(value: Any) -> date:
    return datetime.fromisoformat(str(value)).date()
