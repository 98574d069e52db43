"""Suite-wide test settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


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
