"""SQLite-specific behaviour: the log survives closing and reopening the file."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

from consent import SQLiteConsentStore
from tests.consent.builders import T0, TRAINING_CATEGORIES, add_grant


def test_log_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "node" / "consent.db"
    with SQLiteConsentStore(path) as store:
        kept = add_grant(store, "S1", grant_id="g-1")
        add_grant(store, "S2", grant_id="g-2")
        store.withdraw("g-2", at=T0 + timedelta(days=1))

    with SQLiteConsentStore(path) as reopened:
        events = reopened.events()
        active = reopened.active_subjects(
            purpose="model_training", categories=TRAINING_CATEGORIES, at=T0 + timedelta(days=2)
        )

    assert [e.kind for e in events] == ["granted", "granted", "withdrawn"]
    assert events[0].grant == kept
    assert events[0].at.tzinfo == UTC
    assert active == {"S1"}


def test_microseconds_survive_round_trip(tmp_path: Path) -> None:
    starts_at = T0 + timedelta(microseconds=123456)
    with SQLiteConsentStore(tmp_path / "c.db") as store:
        add_grant(store, "S1", starts_at=starts_at)
    with SQLiteConsentStore(tmp_path / "c.db") as store:
        grant = store.events()[0].grant

    assert grant is not None
    assert grant.starts_at == starts_at
