"""The meter readings file the monitor reads: ``timestamp,kwh`` with optional ``running``
(0/1, the machines' state) and ``failures`` (count in the interval); a bad value names
its row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import DataError
from participants.crossverify.activity import (
    first_bad_row,
    parse_numbers,
    parse_times,
    read_columns,
)

from .monitor import Reading

__all__ = ["read_readings"]


def read_readings(path: Path) -> list[Reading]:
    """Every reading of ``path``, in time order (duplicated timestamps: an error)."""
    frame = read_columns(path, ("timestamp", "kwh"))
    times = parse_times(frame, "timestamp", path)
    kwh = parse_numbers(frame, "kwh", path).to_numpy(dtype=float)
    running: np.ndarray | None = None
    if "running" in frame.columns:
        values = parse_numbers(frame, "running", path)
        bad = ~values.isin([0, 1])
        if bad.any():
            row = first_bad_row(bad)
            raise DataError(file=str(path), row=row, column="running", reason="must be 0 or 1")
        running = values.to_numpy(dtype=bool)
    failures = (
        parse_numbers(frame, "failures", path).to_numpy(dtype=int)
        if "failures" in frame.columns
        else np.zeros(len(frame), dtype=int)
    )
    duplicated = times.duplicated()
    if duplicated.any():
        row = first_bad_row(duplicated)
        raise DataError(file=str(path), row=row, column="timestamp", reason="appears twice")
    order = np.argsort(times.to_numpy(), kind="stable")
    stamps = (
        times.dt.tz_localize(None).dt.to_pydatetime() if times.dt.tz else times.dt.to_pydatetime()
    )
    return [
        Reading(
            at=stamps[i],
            kwh=float(kwh[i]),
            running=None if running is None else bool(running[i]),
            failures=int(failures[i]),
        )
        for i in order
    ]
