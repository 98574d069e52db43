"""The machine-readable training report (``fedrisk train --report REPORT.json``)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ParticipantRecord:
    """A participant's standing after the handshake (counts only, never rows)."""

    name: str
    rows_total: int
    rows_used: int
    excluded: dict[str, int]
    accepted: bool
    reason: str | None = None
    #: The participant's salted hash of the rows it trains on (see the evidence ledger).
    data_commitment: str | None = None


@dataclass(frozen=True)
class RoundRecord:
    """One round: who contributed, who was rejected and why, metrics, privacy spent."""

    server_round: int
    status: str  # "ok" | "failed"
    auc: float | None
    log_loss: float | None
    contributors: list[str]
    rejected: dict[str, str]
    rows_used: dict[str, int]
    epsilon: dict[str, float]
    duration_s: float
    failure: str | None = None


@dataclass
class FederationReport:
    """Everything ``fedrisk train`` reports, per round and final."""

    federation: str
    model: str
    mode: str
    privacy_mode: str
    privacy: dict[str, Any]
    strategy: str
    rounds_planned: int
    schema_hash: str
    participants: list[ParticipantRecord] = field(default_factory=list)
    rounds: list[RoundRecord] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: The training run's id (it stays the same when a restarted coordinator resumes it).
    run_id: str | None = None
    #: Each resumption: the round it went on from and that round's model hash.
    resumed: list[dict[str, Any]] = field(default_factory=list)

    def epsilon_per_participant(self) -> dict[str, float]:
        """The latest ε each participant reported (accumulated over this run's rounds)."""
        latest: dict[str, float] = {}
        for record in self.rounds:
            latest.update(record.epsilon)
        return latest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write atomically: a crash never leaves a half-written report."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
