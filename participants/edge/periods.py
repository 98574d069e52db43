"""Local days, ISO weeks and the span of days a node's readings cover.

Periods are local calendar periods at the node: a reading belongs to the day, week (ISO
8601: Monday to Sunday) and month of its local wall-clock time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "DAY_S",
    "NULL_DAY",
    "SENSOR_CLOCKS",
    "Span",
    "day_numbers",
    "iso_week",
    "local_seconds",
    "monday_of",
    "observed_span",
]

DAY_S: Final = 86_400
NULL_DAY: Final = np.iinfo(np.int64).min
"""Stands for a missing date."""
SENSOR_CLOCKS: Final = {
    "electricity_15min": "ts",
    "utilities_hourly": "ts",
    "climate_hourly": "ts",
    "machine_runs": "run_start",
    "machine_counters_daily": "day",
    "mes_daily": "day",
    "machine_events": "ts",
}
"""The column that dates each kind of operational reading. ERP documents are not among
them: their history reaches back before the sensors and dates no indicator period."""


@dataclass(frozen=True)
class Span:
    """The local days (epoch day numbers, both inclusive) the readings cover."""

    first_day: int
    last_day: int


def local_seconds(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Local wall-clock seconds since the epoch of a timezone-aware timestamp column."""
    utc = np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    if len(utc) == 0:
        return utc
    tz = column.type.tz or "UTC"
    stamps = pd.to_datetime(utc, unit="s", utc=True).tz_convert(tz).tz_localize(None)
    return np.asarray(stamps.as_unit("s").asi8, dtype=np.int64)


def day_numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Local epoch day of each value of a date or timestamp column (nulls: ``NULL_DAY``)."""
    if pa.types.is_timestamp(column.type):
        return local_seconds(column) // DAY_S
    days = column.cast(pa.int32()).cast(pa.int64()).fill_null(NULL_DAY)
    return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.int64)


def monday_of(day: np.ndarray) -> np.ndarray:
    """The Monday (epoch day) of each day's ISO week; 1970-01-01 was a Thursday."""
    return np.asarray(day - (day + 3) % 7, dtype=np.int64)


def iso_week(monday: int) -> str:
    """``YYYY-Www`` of the ISO week starting on epoch day ``monday``."""
    year, week, _ = (dt.date(1970, 1, 1) + dt.timedelta(days=int(monday))).isocalendar()
    return f"{year}-W{week:02d}"


def observed_span(tables: Mapping[str, pa.Table]) -> Span | None:
    """The days from the first to the last operational reading, or ``None`` without any."""
    first, last = None, None
    for kind, clock in SENSOR_CLOCKS.items():
        if kind not in tables or tables[kind].num_rows == 0:
            continue
        days = day_numbers(tables[kind].column(clock))
        lo, hi = int(days.min()), int(days.max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    return None if first is None or last is None else Span(first, last)
