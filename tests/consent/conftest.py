"""Every consent-store backend runs the same contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent import ConsentStore, InMemoryConsentStore, SQLiteConsentStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsentStore]:
    backend: ConsentStore = (
        InMemoryConsentStore()
        if request.param == "memory"
        else SQLiteConsentStore(tmp_path / "consent.db")
    )
    with backend:
        yield backend
