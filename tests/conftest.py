"""Suite-wide test settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import torch

from tests.support.postgres import PostgresServer, PostgresUnavailableError, postgres_server


@pytest.fixture(autouse=True)
def node_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own node state folder (privacy budgets), never the user's ~/.fedrisk."""
    home = tmp_path_factory.mktemp("fedrisk-home")
    monkeypatch.setenv("FEDRISK_HOME", str(home))
    return home


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Tiny models train ~10x faster on one thread than two on this 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (or ``FEDRISK_TEST_POSTGRES_URL``'s).

    Fails, never skips, when PostgreSQL is missing: the PostgreSQL tests are part of CI.
    """
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailableError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of this test's own, dropped afterwards."""
    with postgres.fresh_database() as url:
        yield url
