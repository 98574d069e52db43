"""Retention: negative credit information leaves the ledger after five years.

The Credit Reporting Industry Regulation (Art. 16) keeps negative credit information five
years, then it must go (REFERENCE.md, consent behaviour 13). In the ledger that is every
scoring decision (a subject's pseudonym beside a score or a refusal) and every request for
review of one. :func:`purge_expired` deletes the bodies of those older than the retention
period; their leaf hashes stay, so the tree, every signed head and every remaining entry's
proofs are unchanged, and a ``retention_purge`` entry records what went, when and under
which rule. Consent events and training records are not credit information and stay.

Run it daily (``fedrisk ledger purge``, e.g. from cron or a Kubernetes CronJob); ``--dry-run``
counts what would go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from consent.errors import LedgerError
from consent.grants import ensure_utc
from consent.ledger.entries import utc_timestamp
from consent.ledger.log import EvidenceLog

__all__ = ["PURGEABLE_KINDS", "RETENTION_YEARS", "PurgeReport", "purge_expired", "cutoff_for"]

RETENTION_YEARS: Final = 5
PURGEABLE_KINDS: Final = (
    "lending_decision",
    "monitoring_alert",
    "review_request",
    "scoring_decision",
)
POLICY: Final = (
    "negative credit information is kept 5 years, then deleted "
    "(Credit Reporting Industry Regulation, Art. 16)"
)


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    cutoff: datetime
    purged: int
    kept: int
    record: str | None  # the evidence id of the purge's own entry
    dry_run: bool


def cutoff_for(now: datetime, *, years: int = RETENTION_YEARS) -> datetime:
    """The instant ``years`` calendar years before ``now`` (29 February -> 28 February)."""
    now = ensure_utc(now, name="now")
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def _entry_time(index: int, body: dict[str, Any]) -> datetime:
    try:
        return ensure_utc(datetime.fromisoformat(str(body["at"])), name="at")
    except (KeyError, ValueError) as exc:
        raise LedgerError(f"entry {index} has no readable time 'at' ({exc})") from None


def purge_expired(
    log: EvidenceLog, *, now: datetime | None = None, dry_run: bool = False
) -> PurgeReport:
    """Delete the bodies of the purgeable entries older than the retention period."""
    at = ensure_utc(now or datetime.now(UTC), name="now")
    cutoff = cutoff_for(at)
    due, kept = [], 0
    for index, body in log.indexed_bodies(PURGEABLE_KINDS):
        if _entry_time(index, body) < cutoff:
            due.append(index)
        else:
            kept += 1
    if dry_run or not due:
        return PurgeReport(cutoff=cutoff, purged=len(due), kept=kept, record=None, dry_run=dry_run)
    reason = {
        "at": utc_timestamp(at),
        "cutoff": utc_timestamp(cutoff),
        "policy": POLICY,
        "kinds": list(PURGEABLE_KINDS),
    }
    entry = log.purge(due, reason)
    return PurgeReport(
        cutoff=cutoff,
        purged=len(due),
        kept=kept,
        record=entry.evidence_id if entry else None,
        dry_run=False,
    )
