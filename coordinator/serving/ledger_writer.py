"""Group commit of scoring decisions into the evidence ledger.

Each scoring call waits until its decision is durably in the ledger before it answers, but
calls that arrive while a commit is in flight share the next one: one transaction (and one
fsync) for all of them, taken off the event loop in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from consent.ledger.log import EvidenceLog

__all__ = ["LedgerWriter"]


class LedgerWriter:
    """Appends batches of entries for many concurrent callers, in arrival order."""

    def __init__(self, ledger: EvidenceLog) -> None:
        self._ledger = ledger
        self._pending: list[tuple[Sequence[Mapping[str, Any]], asyncio.Future[list[str]]]] = []
        self._draining = False

    async def append(self, bodies: Sequence[Mapping[str, Any]]) -> list[str]:
        """Append ``bodies``; their evidence ids once committed."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((bodies, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                flat = [body for bodies, _ in batch for body in bodies]
                try:
                    entries = await asyncio.to_thread(self._ledger.append_many, flat)
                except Exception as exc:  # every waiting caller gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for bodies, future in batch:
                    ids = [e.evidence_id for e in entries[start : start + len(bodies)]]
                    start += len(bodies)
                    if not future.done():
                        future.set_result(ids)
        finally:
            self._draining = False
