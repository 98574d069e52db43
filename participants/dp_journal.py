"""The DP events a participant's dataset spent in one training run, kept on the node's disk.

Flower keeps a node's context state for one Flower run only; a coordinator that restarts
resumes the same training run in a new Flower run. The run's ε must go on from where it
was, not from zero, so each round's DP-SGD event is journaled here under the training run's
id, with the hash of the global model the round started from and of the update it
released.

A round asked again after a coordinator crash (same run, same round, same starting model)
recomputes the same release: training is seeded by the round, so the update is
bit-identical and reveals nothing new. Its event is then not counted twice. Should the
update differ, it is a new release and is journaled (and charged) as one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy._files import atomic_write_bytes
from privacy.dp.events import DPEvent
from privacy.errors import PrivacyError

__all__ = ["DPJournal", "JournalEntry"]

_FORMAT = "fedrisk.dp-run-journal"


@dataclass(frozen=True)
class JournalEntry:
    """One round's release: the DP event, the model it started from, the update it sent."""

    server_round: int
    event: DPEvent
    input_sha256: str
    output_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.server_round,
            **self.event.to_dict(),
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any) -> JournalEntry:
        return cls(
            server_round=int(data["round"]),
            event=DPEvent.from_dict(data),
            input_sha256=str(data["input_sha256"]),
            output_sha256=str(data["output_sha256"]),
        )


class DPJournal:
    """The journal at ``path`` (created on the first :meth:`record`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.entries = self._read()

    def _read(self) -> list[JournalEntry]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {_FORMAT!r}")
            return [JournalEntry.from_dict(item) for item in data["entries"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Never a silent reset to zero: an unreadable journal stops training.
            raise PrivacyError(
                f"{self.path}: the run's DP journal is unreadable ({exc}); restore it from a "
                "backup, or start a fresh training run"
            ) from exc

    def replay_of(self, server_round: int, *, input_sha256: str) -> JournalEntry | None:
        """The journaled release of ``server_round`` from the same starting model, if any."""
        for entry in reversed(self.entries):
            if entry.server_round == server_round and entry.input_sha256 == input_sha256:
                return entry
        return None

    def events(self, *, excluding: JournalEntry | None = None) -> list[DPEvent]:
        """Every journaled event (less ``excluding``), in the order spent."""
        return [e.event for e in self.entries if e is not excluding]

    def record(self, entry: JournalEntry) -> None:
        """Append ``entry`` durably (temporary file, fsync, rename)."""
        self.entries.append(entry)
        body = {"format": _FORMAT, "entries": [e.to_dict() for e in self.entries]}
        atomic_write_bytes(self.path, json.dumps(body, indent=1).encode())
