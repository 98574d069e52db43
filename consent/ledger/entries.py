"""What goes into the evidence ledger: hashes and pseudonyms only, never personal data.

Three kinds of entry (DESIGN.md, "Evidence ledger"): consent events, training rounds and
scoring decisions; the lending decisions built on scores (``coordinator/decisions``) add
their policies and decisions. A subject appears as a keyed pseudonym (HMAC-SHA-256 under the ledger
operator's secret, :class:`Pseudonymizer`): a plain hash of a farmer id such as
``F123456789`` could be reversed by trying all nine-digit numbers. The operator can show a
court which pseudonym belongs to a subject by recomputing it; nobody else can.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from consent.errors import LedgerError
from consent.grants import GrantEvent, ensure_utc
from consent.keys import write_private

__all__ = [
    "KINDS",
    "Pseudonymizer",
    "consent_event_entry",
    "review_request_entry",
    "scoring_decision_entry",
    "sha256_hex",
    "training_round_entry",
    "utc_timestamp",
]

KINDS: Final = (
    "consent_event",
    "decision_policy",
    "lending_decision",
    "monitoring_alert",
    "review_request",
    "scoring_decision",
    "training_round",
)
_KEY_FILE = "pseudonym-key"


def sha256_hex(data: bytes | str) -> str:
    """SHA-256 of ``data`` (UTF-8 if text) as lowercase hex."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def utc_timestamp(at: datetime) -> str:
    """``at`` as the ledger writes times: UTC, milliseconds, ``Z``."""
    return ensure_utc(at, name="at").isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Pseudonymizer:
    """Keyed pseudonyms of subject ids: ``HMAC-SHA-256(key, subject_id)``, hex."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise LedgerError("a pseudonym key needs at least 32 bytes")
        self._key = key

    @classmethod
    def in_folder(cls, folder: Path) -> Pseudonymizer:
        """The key in ``folder`` (created, mode 0600, on first use)."""
        path = folder / _KEY_FILE
        if not path.exists():
            write_private(path, secrets.token_bytes(32))
        return cls(path.read_bytes())

    def __call__(self, subject_id: str) -> str:
        return hmac.new(self._key, subject_id.encode(), hashlib.sha256).hexdigest()


def consent_event_entry(
    event: GrantEvent, *, pseudonym: Pseudonymizer, receipt_hash: str | None = None
) -> dict[str, Any]:
    """A grant or withdrawal: the grant id, the subject's pseudonym, what and until when;
    the agreement and the receipt only as hashes."""
    body: dict[str, Any] = {
        "kind": "consent_event",
        "event": event.kind,
        "grant_id": event.grant_id,
        "at": utc_timestamp(event.at),
    }
    grant = event.grant
    if grant is not None:
        body.update(
            subject=pseudonym(grant.subject_id),
            institution=grant.institution,
            purpose=grant.purpose,
            categories=sorted(grant.categories),
            starts_at=utc_timestamp(grant.starts_at),
            expires_at=None if grant.expires_at is None else utc_timestamp(grant.expires_at),
            evidence_hash=grant.evidence_hash,
            channel=grant.channel,
            receipt_hash=receipt_hash,
        )
    return body


def training_round_entry(
    *,
    federation: str,
    round_number: int,
    model_hash: str,
    participants: Sequence[str],
    epsilon: Mapping[str, float],
    data_commitments: Mapping[str, str],
    at: datetime,
    model_version: str | None = None,
    part_hashes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A model's training (its last round): the model's hash (and each vertical part's),
    who took part, the ε each has spent, and each participant's salted commitment to the
    rows it trained on."""
    return {
        "kind": "training_round",
        "federation": federation,
        "round": int(round_number),
        "model_version": model_version,
        "model_hash": model_hash,
        "part_hashes": dict(sorted((part_hashes or {}).items())),
        "participants": sorted(participants),
        "epsilon": {k: float(v) for k, v in sorted(epsilon.items())},
        "data_commitments": dict(sorted(data_commitments.items())),
        "at": utc_timestamp(at),
    }


def scoring_decision_entry(
    *,
    request_hash: str,
    subject_pseudonym: str,
    model: str,
    model_version: str,
    score: float | None,
    grant_id: str | None,
    app: str,
    outcome: str,
    reason: str | None = None,
    at: datetime,
) -> dict[str, Any]:
    """A scoring call's decision, or its refusal (``outcome = "refused"`` with the reason and
    no score): enough to show later which model scored whom under which grant."""
    if outcome not in ("scored", "refused"):
        raise LedgerError(f"outcome must be 'scored' or 'refused', got {outcome!r}")
    return {
        "kind": "scoring_decision",
        "request_hash": request_hash,
        "subject": subject_pseudonym,
        "model": model,
        "model_version": model_version,
        "score": None if score is None else round(float(score), 6),
        "grant_id": grant_id,
        "app": app,
        "outcome": outcome,
        "reason": reason,
        "at": utc_timestamp(at),
    }


def review_request_entry(*, decision: str, app: str, at: datetime) -> dict[str, Any]:
    """A subject's request for a human review of a decision (PIPL Art. 24), by the
    decision's evidence id."""
    return {"kind": "review_request", "decision": decision, "app": app, "at": utc_timestamp(at)}
