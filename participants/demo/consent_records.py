"""Consent records of one institution node, with the gaps real registries show.

Exact shares of the node's subjects (after a seeded shuffle): 8 % never granted anything,
5 % granted ``model_training`` and withdrew it, 4 % let it expire, the rest hold an active
``model_training`` grant over the node's categories. Some subjects also granted
``credit_scoring`` and ``marketing``. All times are relative to the fixed ``as_of``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np

from consent import Grant, GrantEvent, GrantId, SQLiteConsentStore, SubjectId

__all__ = ["CONSENT_GAP_SHARES", "ConsentSummary", "write_consent_db"]

CONSENT_GAP_SHARES: Final = {"never_granted": 0.08, "withdrawn": 0.05, "expired": 0.04}
_CREDIT_SCORING_SHARE: Final = 0.6
_MARKETING_SHARE: Final = 0.2


@dataclass(frozen=True)
class ConsentSummary:
    """How many of the node's subjects fall in each consent situation at ``as_of``."""

    subjects: int
    active: int
    never_granted: int
    withdrawn: int
    expired: int
    credit_scoring: int
    marketing: int


def _grant_id(rng: np.random.Generator) -> GrantId:
    return GrantId(str(uuid.UUID(bytes=rng.bytes(16), version=4)))


def _evidence(institution: str, subject: str, purpose: str, at: datetime) -> str:
    text = f"{institution}|{subject}|{purpose}|{at.isoformat()}|agreement-v3"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _days(rng: np.random.Generator, lo: int, hi: int) -> timedelta:
    return timedelta(days=int(rng.integers(lo, hi)), seconds=int(rng.integers(0, 86_400)))


def write_consent_db(
    path: Path,
    *,
    institution: str,
    subject_ids: Sequence[str],
    categories: Sequence[str],
    channels: Sequence[str],
    as_of: datetime,
    rng: np.random.Generator,
) -> ConsentSummary:
    """Create ``path`` and record the node's grants and withdrawals in one transaction."""
    n = len(subject_ids)
    order = rng.permutation(n)
    n_never = round(CONSENT_GAP_SHARES["never_granted"] * n)
    n_withdrawn = round(CONSENT_GAP_SHARES["withdrawn"] * n)
    n_expired = round(CONSENT_GAP_SHARES["expired"] * n)
    status = np.full(n, "active", dtype=object)
    status[order[:n_never]] = "never_granted"
    status[order[n_never : n_never + n_withdrawn]] = "withdrawn"
    status[order[n_never + n_withdrawn : n_never + n_withdrawn + n_expired]] = "expired"

    events: list[GrantEvent] = []
    withdrawals: list[GrantEvent] = []
    cats = frozenset(categories)
    scoring = marketing = 0

    def add(subject: str, purpose: str, starts: datetime, expires: datetime | None) -> Grant:
        grant = Grant(
            grant_id=_grant_id(rng),
            subject_id=SubjectId(subject),
            institution=institution,
            purpose=purpose,
            categories=cats,
            starts_at=starts,
            expires_at=expires,
            evidence_hash=_evidence(institution, subject, purpose, starts),
            channel=channels[int(rng.integers(len(channels)))],
        )
        events.append(GrantEvent.granted(grant, at=starts))
        return grant

    for i, subject in enumerate(subject_ids):
        kind = status[i]
        if kind == "never_granted":
            continue
        starts = as_of - _days(rng, 30, 900)
        expires: datetime | None
        if kind == "expired":
            expires = as_of - _days(rng, 1, 200)
            starts = expires - timedelta(days=365 * int(rng.integers(1, 3)))
        elif rng.random() < 0.25:
            expires = None
        else:
            expires = starts + timedelta(days=365 * int(rng.integers(2, 4)))
            if expires <= as_of:
                expires = as_of + _days(rng, 30, 365)
        grant = add(subject, "model_training", starts, expires)
        if kind == "withdrawn":
            at = starts + (as_of - starts) * float(rng.uniform(0.2, 0.95))
            withdrawals.append(GrantEvent.withdrawn(grant.grant_id, at=at))
        if kind != "expired" and rng.random() < _CREDIT_SCORING_SHARE:
            scoring += 1
            add(subject, "credit_scoring", starts, None)
        if rng.random() < _MARKETING_SHARE:
            marketing += 1
            add(subject, "marketing", starts, starts + timedelta(days=365))

    # The log is in time order, as recorded; a withdrawal always follows its grant.
    log = sorted(events + withdrawals, key=lambda e: e.at)
    with SQLiteConsentStore(path) as store:
        store.append(log)
    return ConsentSummary(
        subjects=n,
        active=int((status == "active").sum()),
        never_granted=n_never,
        withdrawn=n_withdrawn,
        expired=n_expired,
        credit_scoring=scoring,
        marketing=marketing,
    )
