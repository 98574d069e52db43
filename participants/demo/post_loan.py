"""The demo's post-loan story at the factory nodes, on the node's side: the lender's firms'
raw readings arrive in the node's inbox in two drops, the node ingests them, monitors each
firm and sends its change events to the coordinator.

- **First drop**: everything up to :data:`CUTOFF` (the loans' first months). Orders placed
  before it but produced, shipped or paid after it arrive without those dates.
- **Second drop**: the rest of the window, and those orders again with their later dates
  (a new version of each, as an ERP export gives it). Into this drop the demo writes the
  :class:`ScriptedEvent` s it announces: a firm whose energy use and output fall, a firm
  standing still for a week. They are the only readings the demo alters.

Raw rows never leave the node; what leaves is the change events (with the firm's score
before and after) and, from cross-verification, flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from participants.edge.kinds import RAW_KINDS, RawKind
from participants.monitoring.closures import Closure

from .timeline import FACTORY_CLOSURES, LOCAL_TZ

__all__ = [
    "CUTOFF",
    "ScriptedEvent",
    "demo_closures",
    "drop_readings",
    "pick_loan_firms",
]

#: Where the first drop ends and the second begins (local date).
CUTOFF: Final = date(2025, 4, 1)
_CUTOFF_DAY: Final = pd.Timestamp(CUTOFF)
_LATER_DATES: Final = ("produced_on", "shipped_on", "paid_on")
_SCRIPTED_KINDS: Final = frozenset(
    {"electricity_15min", "machine_runs", "machine_counters_daily", "mes_daily", "erp_orders"}
)
#: A meter standing still draws this share of its usual (median) reading.
_IDLE_SHARE: Final = 0.05


@dataclass(frozen=True)
class ScriptedEvent:
    """What the demo makes happen to ``firm`` in the second drop: ``energy_drop`` (energy
    and output times ``factor`` from ``first`` on) or ``downtime`` (the plant idle,
    nothing produced and the orders due to be made lost, from ``first`` to ``last``,
    inclusive)."""

    firm: str
    kind: Literal["energy_drop", "downtime"]
    first: date
    last: date | None = None
    factor: float = 0.6


def pick_loan_firms(raw: Path, *, count: int, seed: int) -> list[str]:
    """``count`` of the node's firms (seeded), sorted."""
    firms = sorted(set(pq.read_table(raw / "machines.parquet").column("firm_id").to_pylist()))
    rng = np.random.default_rng([seed, 14])
    return sorted(rng.choice(firms, size=min(count, len(firms)), replace=False).tolist())


def demo_closures() -> tuple[Closure, ...]:
    """The demo plants' planned closures (the generator's calendar)."""
    return tuple(
        Closure(
            date.fromisoformat(first),
            date.fromisoformat(last),
            "Spring Festival" if first[5:7] in ("01", "02") else "National Day",
        )
        for first, last in FACTORY_CLOSURES
    )


def drop_readings(
    raw: Path,
    inbox: Path,
    *,
    firms: Iterable[str],
    part: Literal["first", "second"],
    scripted: Sequence[ScriptedEvent] = (),
) -> dict[str, int]:
    """Write ``firms``' rows of the demo's raw tables ``raw`` for ``part`` into the node's
    ``inbox`` (one Parquet file per kind, named for the part); the rows written per kind.
    ``scripted`` events are written into the second part."""
    chosen = sorted(firms)
    written = {}
    for kind in RAW_KINDS:
        source = raw / f"{kind.name}.parquet"
        if not source.exists():
            continue
        table = pq.read_table(source, filters=[("firm_id", "in", chosen)])
        frame = _part(kind, table.to_pandas(), part)
        if frame is None:
            continue
        if part == "second":
            for event in scripted:
                _script(kind, frame, event)
        folder = inbox / kind.name
        folder.mkdir(parents=True, exist_ok=True)
        out = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
        pq.write_table(out, folder / f"{part}-drop.parquet")
        written[kind.name] = len(frame)
    return written


def _time_column(kind: RawKind) -> str | None:
    return next((c.name for c in kind.columns if c.type in ("timestamp", "date")), None)


def _days(values: pd.Series) -> pd.Series:
    """Local calendar days (naive midnights; NaT where empty) of a date or timestamp column."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).dt.normalize()
    return pd.to_datetime(values).dt.normalize()


def _part(kind: RawKind, frame: pd.DataFrame, part: str) -> pd.DataFrame | None:
    column = _time_column(kind)
    if column is None:  # the machine register: once, with the first drop
        return frame if part == "first" else None
    early = _days(frame[column]) < _CUTOFF_DAY
    if kind.name != "erp_orders":
        return frame[early if part == "first" else ~early].copy()
    later = np.zeros(len(frame), dtype=bool)
    for name in _LATER_DATES:
        later |= (frame[name].notna() & (_days(frame[name]) >= _CUTOFF_DAY)).to_numpy()
    if part == "second":
        return frame[~early | later].copy()
    first = frame[early].copy()
    for name in _LATER_DATES:
        known = first[name].notna()
        first.loc[known & (_days(first[name]) >= _CUTOFF_DAY), name] = None
    return first


def _script(raw_kind: RawKind, frame: pd.DataFrame, event: ScriptedEvent) -> None:
    """Apply ``event`` to ``frame`` (one kind's rows of the second drop) in place; an order
    is hit by the day it is made."""
    kind = raw_kind.name
    column = "produced_on" if kind == "erp_orders" else _time_column(raw_kind)
    if kind not in _SCRIPTED_KINDS or column is None:
        return
    days = _days(frame[column])
    last = pd.Timestamp(event.last) if event.last is not None else pd.Timestamp.max
    hit = (frame["firm_id"] == event.firm) & frame[column].notna()
    hit = (hit & (days >= pd.Timestamp(event.first)) & (days <= last)).to_numpy()
    if not hit.any():
        return
    if event.kind == "energy_drop":
        if kind == "electricity_15min":
            frame.loc[hit, "kwh"] = frame.loc[hit, "kwh"] * event.factor
        elif kind == "mes_daily":
            for name in ("units_produced", "units_defective"):
                frame.loc[hit, name] = np.round(frame.loc[hit, name] * event.factor).astype(int)
        elif kind == "erp_orders":  # the customers order less: the orders it makes shrink
            frame.loc[hit, "quantity"] = np.round(frame.loc[hit, "quantity"] * event.factor)
            frame.loc[hit, "amount_cny"] = frame.loc[hit, "amount_cny"] * event.factor
        return
    if kind == "electricity_15min":
        usual = frame.loc[frame["firm_id"] == event.firm].groupby("meter_id")["kwh"].median()
        frame.loc[hit, "kwh"] = frame.loc[hit, "meter_id"].map(usual) * _IDLE_SHARE
    elif kind == "machine_runs":
        frame.drop(index=frame.index[hit], inplace=True)
    elif kind == "machine_counters_daily":
        frame.loc[hit, ["run_hours", "mould_opens"]] = 0
    elif kind == "mes_daily":
        frame.loc[hit, ["units_produced", "units_defective"]] = 0
    elif kind == "erp_orders":  # the week's orders are lost: never made, shipped or paid
        frame.loc[hit, list(_LATER_DATES)] = None
