"""A participant's own state between the messages of a vertical federation.

Flower may hand consecutive messages for one node to different worker processes (the
simulation runtime does), so a party keeps what it must remember — its PSI secret until the
intersection is known, the aligned rows, its weights, the masks it must subtract, the
guest's CKKS key — in its node state folder (``$FEDRISK_HOME/vertical/...``), never in the
Flower context, which lives with the runtime (in simulation, in the coordinator's process).
Secret files are written with mode 0600 and removed when they are no longer needed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from models.layout import node_home
from privacy._files import atomic_write_bytes

_lock = threading.Lock()
_tables: dict[tuple[str, int, int], Any] = {}


def run_dir(federation: str, participant: str, run_id: str) -> Path:
    """This participant's folder for one vertical run."""
    for part in (federation, participant, run_id):
        if not part or "/" in part or part.startswith("."):
            raise ValueError(f"unsafe name for a state folder: {part!r}")
    return node_home() / "vertical" / federation / participant / run_id


def part_dir(federation: str, participant: str, export_id: str) -> Path:
    """Where this participant files its part of a vertical model version (serving reads it)."""
    for part in (federation, participant, export_id):
        if not part or "/" in part or part.startswith("."):
            raise ValueError(f"unsafe name for a part folder: {part!r}")
    return node_home() / "parts" / federation / participant / export_id


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Mode 0600 for every state file: they hold subject ids, weights or secrets."""
    atomic_write_bytes(path, json.dumps(data).encode(), mode=0o600)


def read_json(path: Path, *, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no {what} in this run yet (protocol step out of order?)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} is damaged")
    return data


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    from io import BytesIO

    buffer = BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buffer.getvalue(), mode=0o600)


def read_arrays(path: Path, *, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ValueError(f"no {what} in this run yet (protocol step out of order?)") from None


#: Entries kept (data tables and runs' aligned rows); the oldest goes first.
_CACHE_SIZE = 16


def cached_table(path: Path, loader: Any) -> Any:
    """``loader()``'s result for a data file, reused while the file is unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _tables:
            return _tables[key]
    value = loader()
    with _lock:
        _tables[key] = value
        while len(_tables) > _CACHE_SIZE:
            del _tables[next(iter(_tables))]
    return value
