"""Group commit: concurrent callers share transactions and each gets its own evidence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consent.errors import LedgerError
from consent.ledger import EvidenceLog
from coordinator.serving.ledger_writer import LedgerWriter


def test_concurrent_appends_get_their_own_entries_in_fewer_commits(tmp_path: Path) -> None:
    log = EvidenceLog.in_folder(tmp_path)
    commits: list[int] = []
    original = log.append_many

    def counting(bodies):  # type: ignore[no-untyped-def]
        commits.append(len(bodies))
        return original(bodies)

    log.append_many = counting  # type: ignore[method-assign]
    writer = LedgerWriter(log)

    async def main() -> list[list[str]]:
        return await asyncio.gather(
            *(
                writer.append([{"kind": "test", "n": i}, {"kind": "test", "n": -i}])
                for i in range(40)
            )
        )

    ids = asyncio.run(main())

    for i, (first, second) in enumerate(ids):
        assert log.find(first).body == {"kind": "test", "n": i}
        assert log.find(second).body == {"kind": "test", "n": -i}
    assert sum(commits) == 80 and len(commits) < 40
    assert log.verify().ok


def test_a_failed_commit_reaches_every_waiting_caller(tmp_path: Path) -> None:
    writer = LedgerWriter(EvidenceLog.in_folder(tmp_path, read_only=False))

    async def main() -> None:
        await writer.append([{"no kind": True}])

    with pytest.raises(LedgerError, match="kind"):
        asyncio.run(main())
