"""Where the scoring service keeps consent: SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent.store import SQLiteConsentStore
from coordinator.serving.service import ServingState
from coordinator.serving.settings import ServeSettings


def _settings(tmp_path: Path, **more: object) -> ServeSettings:
    return ServeSettings(state_dir=tmp_path / "serving", registry=tmp_path / "registry", **more)


def _decide(state: ServingState) -> tuple[bool, bool]:
    now = datetime.now(UTC)
    state.consent.grant(
        subject_id="F1",
        institution="bank",
        purpose="credit_scoring",
        categories=["bank.loans"],
        starts_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=1),
        evidence_hash="ab" * 32,
        channel="branch",
    )
    ask = {"purpose": "credit_scoring", "categories": ["bank.loans"], "at": now}
    found = state.consent.store.decide_many(["F1", "F2"], **ask, institution="bank")
    return found["F1"].allowed, found["F2"].allowed


def test_the_default_is_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    state = ServingState.from_settings(_settings(tmp_path))
    assert isinstance(state.consent.store, SQLiteConsentStore)
    assert _decide(state) == (True, False)
    assert (tmp_path / "serving" / "consent.db").exists()


@pytest.mark.postgres
def test_a_consent_database_url_puts_consent_in_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDRISK_COORD_CONSENT_DATABASE_URL", postgres_url)
    state = ServingState.from_settings(_settings(tmp_path))
    try:
        assert state.consent.store.reads_inline is False  # read off the event loop
        assert _decide(state) == (True, False)
        assert not (tmp_path / "serving" / "consent.db").exists()
    finally:
        state.consent.close()
