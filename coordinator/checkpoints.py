"""Per-round checkpoints of a training run, each a commit: a restarted coordinator resumes
from the newest one.

A run's checkpoints live in ``<checkpoint dir>/runs/<run id>/round-NNNN.npz``; the file
``current-run`` names the run started last. Each checkpoint holds the round's global arrays
and, as JSON, everything the coordinator needs to go on from there (the report so far, the
ε each participant reported). It is written to a temporary file, fsync'ed and renamed into
place, so a round is committed whole or not at all: a crash mid-round leaves the previous
round's checkpoint as the newest. A finished run is marked ``finished.json``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.parameters import arrays_sha256
from privacy._files import atomic_write_bytes

__all__ = [
    "Checkpoint",
    "current_run",
    "finish_run",
    "latest_checkpoint",
    "load_checkpoint",
    "run_finished",
    "save_checkpoint",
    "start_run",
]

_CURRENT = "current-run"
_FINISHED = "finished.json"
_STATE = "__state__"


@dataclass(frozen=True)
class Checkpoint:
    """One committed round of a run."""

    run_id: str
    server_round: int
    arrays: list[np.ndarray]
    state: dict[str, Any]
    path: Path

    @property
    def model_sha256(self) -> str:
        return arrays_sha256(self.arrays)


def _run_dir(directory: Path, run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ValueError(f"not a run id: {run_id!r}")
    return directory / "runs" / run_id


def start_run(directory: Path, run_id: str) -> None:
    """Make ``run_id`` the current run (the one a restart resumes)."""
    _run_dir(directory, run_id).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / _CURRENT, run_id.encode())


def current_run(directory: Path) -> str | None:
    """The run started last in ``directory``, or None."""
    path = directory / _CURRENT
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def save_checkpoint(
    directory: Path,
    *,
    server_round: int,
    arrays: list[np.ndarray],
    run_id: str,
    state: dict[str, Any] | None = None,
) -> Path:
    """Commit round ``server_round`` of ``run_id``: its arrays and ``state`` (JSON)."""
    target = _run_dir(directory, run_id) / f"round-{server_round:04d}.npz"
    meta = json.dumps({"run_id": run_id, "server_round": server_round, **(state or {})})
    buffer = io.BytesIO()
    # The arrays are stored as arr_0, arr_1, ...; the state beside them (see _STATE).
    np.savez(buffer, *arrays, __state__=np.frombuffer(meta.encode(), dtype=np.uint8))
    atomic_write_bytes(target, buffer.getvalue())
    return target


def load_checkpoint(directory: Path, run_id: str | None = None) -> Checkpoint | None:
    """The newest committed round of ``run_id`` (default: the current run), or None."""
    run_id = run_id or current_run(directory)
    if run_id is None:
        return None
    files = sorted(_run_dir(directory, run_id).glob("round-*.npz"))
    if not files:
        return None
    newest = files[-1]
    with np.load(newest) as data:
        count = sum(1 for name in data.files if name.startswith("arr_"))
        arrays = [data[f"arr_{i}"] for i in range(count)]
        state = json.loads(bytes(data[_STATE]).decode()) if _STATE in data.files else {}
    return Checkpoint(
        run_id=run_id,
        server_round=int(newest.stem.split("-")[1]),
        arrays=arrays,
        state=state,
        path=newest,
    )


def latest_checkpoint(directory: Path) -> tuple[int, list[np.ndarray]] | None:
    """The current run's newest checkpoint as (round, arrays), or None."""
    found = load_checkpoint(directory)
    return None if found is None else (found.server_round, found.arrays)


def finish_run(directory: Path, run_id: str, *, outcome: dict[str, Any]) -> None:
    """Mark ``run_id`` finished (a restart then has nothing to resume)."""
    body = json.dumps(outcome, sort_keys=True).encode()
    atomic_write_bytes(_run_dir(directory, run_id) / _FINISHED, body)


def run_finished(directory: Path, run_id: str) -> dict[str, Any] | None:
    """What :func:`finish_run` recorded for ``run_id``, or None while it is unfinished."""
    path = _run_dir(directory, run_id) / _FINISHED
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
