"""SQLite-specific behaviour: the database file itself refuses edits of the log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from consent import SQLiteConsentStore
from tests.consent.builders import add_grant


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
