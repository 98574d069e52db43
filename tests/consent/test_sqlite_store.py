"""SQLite-specific behaviour: the log survives closing and reopening the file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, timedelta
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "statement",
    ["UPDATE consent_events SET purpose = 'marketing'", "DELETE FROM consent_events"],
)
def test_database_refuses_edits_of_the_log(tmp_path: Path, statement: str) -> None:
    path = tmp_path / "c.db"
    with SQLiteConsentStore(path) as store:
        add_grant(store, "S1")

    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(statement)
    with SQLiteConsentStore(path) as store:
        assert [e.kind for e in store.events()] == ["granted"]
