"""Durable backends (SQLite, PostgreSQL): the log survives closing and reopening the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from consent import ConsentStore, SQLAlchemyConsentStore, SQLiteConsentStore
from tests.consent.builders import T0, TRAINING_CATEGORIES, add_grant


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ConsentStore]:
    """Opens the same durable store anew each time it is called."""
    if request.param == "sqlite":
        return lambda: SQLiteConsentStore(tmp_path / "node" / "consent.db")
    url = request.getfixturevalue("postgres_url")
    return lambda: SQLAlchemyConsentStore(url)


def test_log_persists_across_reopening(reopen: Callable[[], ConsentStore]) -> None:
    with reopen() as store:
        kept = add_grant(store, "S1", grant_id="g-1")
        add_grant(store, "S2", grant_id="g-2")
        store.withdraw("g-2", at=T0 + timedelta(days=1))

    with reopen() as reopened:
        events = reopened.events()
        active = reopened.active_subjects(
            purpose="model_training", categories=TRAINING_CATEGORIES, at=T0 + timedelta(days=2)
        )

    assert [e.kind for e in events] == ["granted", "granted", "withdrawn"]
    assert events[0].grant == kept
    assert events[0].at.tzinfo == UTC
    assert active == {"S1"}


def test_microseconds_survive_round_trip(reopen: Callable[[], ConsentStore]) -> None:
    starts_at = T0 + timedelta(microseconds=123456)
    with reopen() as store:
        add_grant(store, "S1", starts_at=starts_at)
    with reopen() as store:
        grant = store.events()[0].grant

    assert grant is not None
    assert grant.starts_at == starts_at
