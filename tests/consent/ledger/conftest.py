"""The ``database`` fixture: every ledger test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consent.ledger.databases import LedgerDatabase


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerDatabase]:
    if request.param == "sqlite":
        yield LedgerDatabase(tmp_path)
    else:
        yield LedgerDatabase(tmp_path, request.getfixturevalue("postgres_url"))
