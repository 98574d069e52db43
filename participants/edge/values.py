"""Text values of a raw kind, checked and turned into typed Arrow columns.

The inbox stores what a file says, as text; the same parsing serves twice: as the inbox's
check before anything of a file is stored (the first bad value is refused by row and
column), and when the stored rows become the typed tables the indicators are computed from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from ..inbox import BadValue, ValueCheck
from .kinds import LOAD_TYPES, Column, RawKind

__all__ = ["ParsedColumn", "parse_column", "typed_table", "value_check"]

_OFFSET: Final = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_LOAD_TYPE_NAMES: Final = {
    **{name: name for name in LOAD_TYPES},
    **{f"{name}_load": name for name in LOAD_TYPES},
}
_EXPECTED: Final = {
    "float": "a number",
    "int": "a whole number",
    "flag": "0 or 1",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "an ISO 8601 timestamp",
    "load_type": f"a load type ({', '.join(LOAD_TYPES)})",
}


@dataclass(frozen=True)
class ParsedColumn:
    """A column's values and which of them could not be read (``bad``; empty optional
    values are missing, not bad)."""

    values: pa.Array
    bad: np.ndarray


def _missing(text: pd.Series) -> np.ndarray:
    return np.asarray(text.str.strip() == "", dtype=bool)


def _numbers(text: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray]:
    values = pd.to_numeric(text.str.strip().where(~_missing(text)), errors="coerce")
    number = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(number)
    if column.type == "int":
        bad |= np.isfinite(number) & (number != np.round(number))
    if column.type == "flag":
        bad |= np.isfinite(number) & ~np.isin(number, (0.0, 1.0))
    with np.errstate(invalid="ignore"):
        if column.min is not None:
            bad |= number < column.min
        if column.max is not None:
            bad |= number > column.max
    return number, bad


def _epoch_seconds(text: pd.Series, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the epoch (UTC); a timestamp without offset is local time in ``tz``."""
    stripped = text.str.strip()
    aware = np.asarray(stripped.str.contains(_OFFSET), dtype=bool)
    seconds = np.zeros(len(text), dtype=np.int64)
    bad = np.zeros(len(text), dtype=bool)
    for with_offset in (True, False):
        mask = aware if with_offset else ~aware
        if not mask.any():
            continue
        part = pd.to_datetime(stripped[mask], format="ISO8601", errors="coerce", utc=with_offset)
        if not with_offset:
            part = part.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        missing = np.asarray(part.isna(), dtype=bool)
        utc = part.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[s]")
        seconds[mask] = np.where(missing, 0, utc.to_numpy().astype(np.int64))
        bad[mask] = missing
    return seconds, bad


def _days(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    parsed = pd.to_datetime(text.str.strip(), format="%Y-%m-%d", errors="coerce")
    bad = np.asarray(parsed.isna(), dtype=bool)
    days = parsed.astype("datetime64[s]").to_numpy().astype("datetime64[D]").astype(np.int64)
    return np.where(bad, 0, days), bad


def parse_column(text: pd.Series, column: Column, *, tz: str) -> ParsedColumn:
    """``text`` as ``column``'s type (empty optional values become nulls)."""
    missing = _missing(text)
    if column.type == "text":
        return ParsedColumn(pa.array(text.str.strip().tolist(), pa.string()), missing)
    if column.type == "load_type":
        names = text.str.strip().str.lower().map(_LOAD_TYPE_NAMES)
        bad = np.asarray(names.isna(), dtype=bool) & ~missing
        array = pa.array(names.fillna("").tolist(), pa.string(), mask=bad | missing)
        return ParsedColumn(array, bad)
    if column.type in ("float", "int", "flag"):
        number, bad = _numbers(text, column)
        bad = bad & ~missing
        if column.type == "float":
            return ParsedColumn(pa.array(number, pa.float64(), mask=bad | missing), bad)
        whole = np.where(bad | missing, 0, number).astype(np.int64)
        return ParsedColumn(pa.array(whole, pa.int64(), mask=bad | missing), bad)
    if column.type == "date":
        days, bad = _days(text)
        bad = bad & ~missing
        array = pa.array(days.astype(np.int32), pa.int32(), mask=bad | missing)
        return ParsedColumn(array.cast(pa.date32()), bad)
    seconds, bad = _epoch_seconds(text, tz)
    bad = bad & ~missing
    array = pa.array(seconds, pa.int64(), mask=bad | missing)
    return ParsedColumn(array.cast(pa.timestamp("s", tz=tz)), bad)


def _bounds(column: Column) -> str:
    if column.min is not None and column.max is not None:
        return f" from {column.min:g} to {column.max:g}"
    if column.min is not None:
        return f" >= {column.min:g}"
    return "" if column.max is None else f" <= {column.max:g}"


def _first_bad(frame: pd.DataFrame, kind: RawKind, tz: str) -> BadValue | None:
    found: BadValue | None = None
    seconds: dict[str, np.ndarray] = {}
    for column in kind.columns:
        if column.type == "text":
            continue
        parsed = parse_column(frame[column.name], column, tz=tz)
        if column.type == "timestamp":
            seconds[column.name] = np.asarray(parsed.values.cast(pa.int64()).fill_null(0))
        if parsed.bad.any():
            position = int(parsed.bad.argmax())
            if found is None or position < found.position:
                value = frame[column.name].iloc[position]
                reason = f"{value!r} is not {_EXPECTED[column.type]}{_bounds(column)}"
                found = BadValue(position, column.name, reason)
    if kind.ordered is not None and found is None:
        first, then = kind.ordered
        backwards = seconds[then] < seconds[first]
        if backwards.any():
            position = int(backwards.argmax())
            return BadValue(position, then, f"comes before {first}")
    return found


def value_check(kind: RawKind, *, tz: str) -> ValueCheck:
    """The inbox check of ``kind``: its first unreadable or out-of-range value, if any."""

    def check(frame: pd.DataFrame) -> BadValue | None:
        return _first_bad(frame, kind, tz)

    return check


def typed_table(kind: RawKind, frame: pd.DataFrame, *, tz: str) -> pa.Table:
    """Stored text rows of ``kind`` as an Arrow table of its column types (checked before
    they were stored, so nothing here is bad)."""
    return pa.table(
        {c.name: parse_column(frame[c.name].astype(str), c, tz=tz).values for c in kind.columns}
    )
