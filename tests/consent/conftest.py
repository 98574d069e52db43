"""Every consent-store backend runs the same contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent import ConsentStore, InMemoryConsentStore, SQLAlchemyConsentStore, SQLiteConsentStore


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsentStore]:
    backend: ConsentStore
    if request.param == "memory":
        backend = InMemoryConsentStore()
    elif request.param == "sqlite":
        backend = SQLiteConsentStore(tmp_path / "consent.db")
    else:
        backend = SQLAlchemyConsentStore(request.getfixturevalue("postgres_url"))
    with backend:
        yield backend
