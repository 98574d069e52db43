"""Resuming a training run after a coordinator restart, from its newest checkpoint.

The checkpoint carries the run's state (:func:`run_state`): the report's rounds so far, the
DP parameters each participant reported, and digests of the federation settings and the
schema. A run resumes only with the same settings (``rounds`` may grow) and schema; else
the coordinator refuses and says what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.federation import FederationSpec

from .checkpoints import current_run, load_checkpoint, run_finished
from .handshake import FederationAbortedError
from .report import FederationReport, RoundRecord

__all__ = ["Restored", "restore_run", "run_state", "settings_digest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restored:
    """Where a resumed run goes on from (``arrays`` None: no round was committed yet)."""

    run_id: str
    server_round: int
    arrays: list[np.ndarray] | None
    path: Path | None


def settings_digest(spec: FederationSpec) -> str:
    """SHA-256 of the federation's settings, less the number of rounds."""
    settings = spec.to_dict()
    settings["federation"].pop("rounds", None)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def run_state(report: FederationReport, spec: FederationSpec) -> dict[str, Any]:
    """What a checkpoint must hold for the run to go on from it."""
    dp = report.privacy.get("dp")
    return {
        "federation": spec.name,
        "settings_sha256": settings_digest(spec),
        "schema_hash": report.schema_hash,
        "rounds": [asdict(r) for r in report.rounds],
        "dp_used": dp.get("used", {}) if isinstance(dp, dict) else {},
        "resumed": list(report.resumed),
    }


def restore_run(directory: Path, spec: FederationSpec, report: FederationReport) -> Restored:
    """The run to resume from ``directory``, its past rounds put back into ``report``."""
    run_id = current_run(directory)
    if run_id is None:
        raise FederationAbortedError(
            f"nothing to resume: no training run of {spec.name} in {directory}; "
            "start one without --resume"
        )
    finished = run_finished(directory, run_id)
    if finished is not None:
        raise FederationAbortedError(
            f"nothing to resume: run {run_id} of {spec.name} finished "
            f"({finished.get('model_version') or 'nothing published'}); "
            "start a fresh run without --resume"
        )
    found = load_checkpoint(directory, run_id)
    if found is None:
        logger.info("resuming run %s from the start: no round was committed", run_id)
        report.resumed.append(_resumption(0, None))
        return Restored(run_id, 0, None, None)
    state = found.state
    for key, want in (("settings_sha256", settings_digest(spec)),
                      ("schema_hash", report.schema_hash)):  # fmt: skip
        if state.get(key) != want:
            what = "settings" if key == "settings_sha256" else "schema"
            raise FederationAbortedError(
                f"cannot resume run {run_id}: the federation's {what} changed since "
                f"{found.path.name} (only `rounds` may change); start a fresh run"
            )
    report.rounds.extend(RoundRecord(**r) for r in state.get("rounds", []))
    report.resumed.extend(state.get("resumed", []))
    report.resumed.append(_resumption(found.server_round, found.model_sha256))
    dp = report.privacy.get("dp")
    if isinstance(dp, dict) and state.get("dp_used"):
        dp["used"] = dict(state["dp_used"])
    logger.info("resuming run %s after round %d (model sha256 %s)",
                run_id, found.server_round, found.model_sha256)  # fmt: skip
    return Restored(run_id, found.server_round, found.arrays, found.path)


def _resumption(server_round: int, model_sha256: str | None) -> dict[str, Any]:
    return {
        "after_round": server_round,
        "model_sha256": model_sha256,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
