"""The monitor's readings from the node's raw store (``NODE/raw.db``, written by
``fedrisk node ingest``), so a factory node needs no separate readings CSV.

One :class:`~.monitor.Reading` per 15-minute slot of the firm's meters: the slot's energy
summed over the firm's meters (``electricity_15min``); ``running`` whether any of its
machines ran during the slot (``machine_runs``; ``None`` when the firm has no runs stored);
``failures`` the machine failures recorded in the slot (``machine_events``). Times are
local wall-clock times at the node, naive, as :func:`~.readings.read_readings` gives them.

The store is opened read-only and its text values are parsed as the edge pipeline parses
them (:func:`participants.edge.values.parse_column`), so both read the same readings.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from models.errors import DataError, did_you_mean
from participants.edge import RAW_DATABASE, EdgeSettings, raw_kind
from participants.edge.values import parse_column

from .monitor import Reading

__all__ = ["DEFAULT_TIMEZONE", "raw_database", "readings_from_node"]

DEFAULT_TIMEZONE: Final = EdgeSettings().timezone
"""The edge pipeline's default zone for timestamps without a UTC offset."""

_SLOT_S: Final = 15 * 60
_LISTED_FIRMS: Final = 5


def raw_database(node: Path) -> Path:
    """``node``'s raw store; :class:`~models.errors.DataError` if there is none yet."""
    path = Path(node) / RAW_DATABASE
    if not path.is_file():
        raise DataError(
            file=str(path),
            row=None,
            column=None,
            reason="no raw store: run `fedrisk node ingest --inbox DIR --node NODE` first",
        )
    return path


def readings_from_node(
    node: Path, *, firm: str, after: datetime | None = None, tz: str = DEFAULT_TIMEZONE
) -> list[Reading]:
    """The readings of ``firm`` in ``node``'s raw store, in time order; only slots after
    ``after`` (local time if naive) when given. ``tz``: the zone the node ingested with."""
    _check_zone(tz)
    path = raw_database(node)
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            spellings = _firm_spellings(db, firm, path)
            meters = _rows(db, "electricity_15min", spellings)
            runs = _rows(db, "machine_runs", spellings)
            events = _rows(db, "machine_events", spellings)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise DataError(
            file=str(path), row=None, column=None, reason=f"not a readable raw store ({exc})"
        ) from exc
    slots, kwh = _energy(meters, tz=tz, path=path)
    at = _local(slots, tz)
    if after is not None:
        newer = at > _naive_local(after, tz)
        slots, kwh, at = slots[newer], kwh[newer], at[newer]
    running = _running(slots, runs, tz=tz, path=path) if len(runs) else None
    failures = _failures(slots, events, tz=tz, path=path)
    return [
        Reading(
            at=at[i].to_pydatetime(),
            kwh=float(kwh[i]),
            running=None if running is None else bool(running[i]),
            failures=int(failures[i]),
        )
        for i in range(len(slots))
    ]


def _check_zone(tz: str) -> None:
    """:class:`~participants.edge.EdgeError` unless ``tz`` is a zone (as ingest checks it)."""
    EdgeSettings(timezone=tz)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _firm_spellings(db: sqlite3.Connection, firm: str, path: Path) -> list[str]:
    """The stored spellings of ``firm``'s id among the meter readings (ids are compared
    stripped, as the edge pipeline reads them); an error naming the firms there are."""
    stored: list[str] = []
    if "electricity_15min" in _tables(db):
        stored = [f for (f,) in db.execute("SELECT DISTINCT firm_id FROM electricity_15min")]
    spellings = [f for f in stored if f.strip() == firm]
    if spellings:
        return spellings
    firms = sorted({f.strip() for f in stored})
    if not firms:
        hint = " (no electricity_15min readings are stored yet)"
    else:
        listed = ", ".join(firms[:_LISTED_FIRMS]) + (", …" if len(firms) > _LISTED_FIRMS else "")
        hint = did_you_mean(firm, firms) or f" (firms with readings: {listed})"
    raise DataError(
        file=str(path),
        row=None,
        column="firm_id",
        reason=f"no electricity_15min readings of firm {firm!r}{hint}",
    )


def _rows(db: sqlite3.Connection, kind: str, firms: list[str]) -> pd.DataFrame:
    """The stored text rows of ``kind`` for the firm, in key order (as the store reads)."""
    columns = list(raw_kind(kind).column_names)
    if kind not in _tables(db):
        return pd.DataFrame(columns=columns, dtype=str)
    keys = ", ".join(f'"{c}"' for c in raw_kind(kind).key)
    marks = ", ".join("?" for _ in firms)
    query = f'SELECT * FROM "{kind}" WHERE firm_id IN ({marks}) ORDER BY {keys}'
    return pd.read_sql_query(query, db, params=firms).astype(str)


def _values(frame: pd.DataFrame, kind: str, name: str, *, tz: str, path: Path) -> pa.Array:
    """Column ``name`` of ``kind``'s text rows, typed; an error if a value is unreadable
    (a naive timestamp that does not exist in ``tz``, say, when ``tz`` is not the zone
    the node ingested with)."""
    (column,) = (c for c in raw_kind(kind).columns if c.name == name)
    parsed = parse_column(frame[name], column, tz=tz)
    if parsed.bad.any():
        value = frame[name].iloc[int(parsed.bad.argmax())]
        reason = f"{kind}: stored value {value!r} is not readable in time zone {tz}"
        raise DataError(file=str(path), row=None, column=name, reason=reason)
    return parsed.values


def _seconds(frame: pd.DataFrame, kind: str, name: str, *, tz: str, path: Path) -> np.ndarray:
    values = _values(frame, kind, name, tz=tz, path=path)
    return np.asarray(values.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _energy(meters: pd.DataFrame, *, tz: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The slots (UTC epoch seconds, ascending) and their kWh over all meters; each
    meter's reading once, however its timestamp was spelled."""
    kind = "electricity_15min"
    frame = pd.DataFrame(
        {
            "meter": meters["meter_id"].str.strip(),
            "ts": _seconds(meters, kind, "ts", tz=tz, path=path),
            "kwh": np.asarray(_values(meters, kind, "kwh", tz=tz, path=path), dtype=float),
        }
    ).drop_duplicates(subset=["meter", "ts"], keep="first")
    sums = frame.groupby(frame["ts"] // _SLOT_S * _SLOT_S)["kwh"].sum().sort_index()
    return sums.index.to_numpy(dtype=np.int64), sums.to_numpy(dtype=float)


def _running(slots: np.ndarray, runs: pd.DataFrame, *, tz: str, path: Path) -> np.ndarray:
    """Whether any run overlaps each slot ``[s, s + 15 min)`` for a positive time."""
    start = _seconds(runs, "machine_runs", "run_start", tz=tz, path=path)
    end = _seconds(runs, "machine_runs", "run_end", tz=tz, path=path)
    first = np.searchsorted(slots, start - _SLOT_S, side="right")
    stop = np.searchsorted(slots, end, side="left")
    overlaps = first < stop
    marks = np.zeros(len(slots) + 1, dtype=np.int64)
    np.add.at(marks, first[overlaps], 1)
    np.add.at(marks, stop[overlaps], -1)
    return np.cumsum(marks)[: len(slots)] > 0


def _failures(slots: np.ndarray, events: pd.DataFrame, *, tz: str, path: Path) -> np.ndarray:
    """Machine failures recorded in each slot (events in slots without a meter reading
    are not counted: the monitor has no interval to put them in)."""
    counts = np.zeros(len(slots), dtype=np.int64)
    if not len(events) or not len(slots):
        return counts
    kind = "machine_events"
    frame = pd.DataFrame(
        {
            "machine": events["machine_id"].str.strip(),
            "ts": _seconds(events, kind, "ts", tz=tz, path=path),
            "failed": np.asarray(_values(events, kind, "machine_failure", tz=tz, path=path)),
        }
    ).drop_duplicates(subset=["machine", "ts"], keep="first")
    slot = frame["ts"].to_numpy() // _SLOT_S * _SLOT_S
    where = np.searchsorted(slots, slot)
    found = (where < len(slots)) & (slots[np.minimum(where, len(slots) - 1)] == slot)
    np.add.at(counts, where[found], frame["failed"].to_numpy(dtype=np.int64)[found])
    return counts


def _local(slots: np.ndarray, tz: str) -> pd.DatetimeIndex:
    return pd.to_datetime(slots, unit="s", utc=True).tz_convert(tz).tz_localize(None)


def _naive_local(at: datetime, tz: str) -> pd.Timestamp:
    stamp = pd.Timestamp(at)
    return stamp.tz_convert(tz).tz_localize(None) if stamp.tzinfo is not None else stamp
