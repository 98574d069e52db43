"""Per-round checkpoints of the global model, written atomically, readable after a crash."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def save_checkpoint(directory: Path, *, server_round: int, arrays: list[np.ndarray]) -> Path:
    """Save the round's global arrays as ``round-NNNN.npz`` (temp file + fsync + rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"round-{server_round:04d}.npz"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ckpt-", suffix=".npz")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, *arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


def latest_checkpoint(directory: Path) -> tuple[int, list[np.ndarray]] | None:
    """The newest complete checkpoint (round, arrays), or None if there is none."""
    files = sorted(directory.glob("round-*.npz")) if directory.exists() else []
    if not files:
        return None
    newest = files[-1]
    with np.load(newest) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    return int(newest.stem.split("-")[1]), arrays
