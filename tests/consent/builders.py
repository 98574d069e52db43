"""Small builders shared by the consent tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from consent import ConsentStore, Grant

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRAINING_CATEGORIES = ("bank.transactions", "bank.loans")


def add_grant(
    store: ConsentStore,
    subject_id: str,
    *,
    purpose: str = "model_training",
    categories: Iterable[str] = TRAINING_CATEGORIES,
    starts_at: datetime = T0,
    expires_at: datetime | None = T0 + timedelta(days=365),
    institution: str = "bank",
    grant_id: str | None = None,
) -> Grant:
    """Record one grant with sensible defaults."""
    return store.grant(
        subject_id=subject_id,
        institution=institution,
        purpose=purpose,
        categories=categories,
        starts_at=starts_at,
        expires_at=expires_at,
        evidence_hash="sha256:" + "ab" * 32,
        channel="mobile_app",
        grant_id=grant_id,
    )
