"""Weekly indicators of a node's stored readings, for monitoring between monthly rows.

One row per registered firm (the ``machines`` register) and ISO week (Monday to Sunday,
local time) from the first to the last operational reading. Sums are over the week's
readings; a ratio is empty where its denominator is zero (nothing to divide), and the
machine-event columns are empty for a week without condition-monitoring observations.
Every week depends only on readings dated in it (receivables: on documents up to its end),
so new readings change only the weeks they fall in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from ..demo.indicators import GAS_KWH_PER_M3
from .kinds import LOAD_TYPES
from .periods import DAY_S, NULL_DAY, Span, day_numbers, iso_week, local_seconds, monday_of

__all__ = ["WEEKLY_COLUMNS", "WeeklySettings", "weekly_indicators"]

WEEKLY_COLUMNS: Final = (
    "row_id",
    "firm_id",
    "week",
    "week_start",
    "metered_hours",  # 15-minute intervals the main meters reported, in hours
    "electricity_kwh",
    "gas_m3",
    "water_m3",
    "energy_kwh_eq",  # electricity plus gas at GAS_KWH_PER_M3
    "units_produced",
    "units_defective",
    "energy_per_unit",  # energy_kwh_eq per good unit (produced - defective)
    "defect_rate",
    "night_share",  # share of electricity used 22:00-06:00
    "light_load_share",  # shares of the metered intervals by load type
    "medium_load_share",
    "maximum_load_share",
    "run_hours",  # machine run hours (runs split at week boundaries)
    "downtime_hours",  # machine stops after events (machine_events.downtime_min)
    "idle_hours",  # machine-hours while metered, neither running nor down
    "utilisation",  # run hours / machine-hours while metered
    "temperature_excursion_hours",  # workshop hours outside the temperature band
    "humid_hours",  # workshop hours at or above the humidity limit
    "orders_placed",
    "order_value_cny",
    "units_shipped",
    "shipped_value_cny",
    "receivables_cny",  # shipped, unpaid at the week's end
    "receivables_overdue_cny",  # of which past due at the week's end
    "receivable_overdue_ratio",
    "machine_observations",  # condition-monitoring observations (machine_events rows)
    "failure_rate",  # share of observations with a machine failure
    "tool_wear_failure_rate",  # share with a tool-wear failure (AI4I's TWF)
    "mean_tool_wear_min",
)
_COUNTS: Final = (
    "units_produced",
    "units_defective",
    "orders_placed",
    "units_shipped",
    "machine_observations",
)
_NIGHT_STARTS_H: Final = 22
_NIGHT_ENDS_H: Final = 6
_INTERVAL_H: Final = 0.25


@dataclass(frozen=True)
class WeeklySettings:
    """Limits of the weekly indicators.

    ``light_load_below`` and ``maximum_load_from`` classify a 15-minute interval without a
    load type of its own by its mean power against the firm's installed (rated) power.
    """

    temperature_min_c: float = 5.0
    temperature_max_c: float = 35.0
    humid_pct: float = 85.0
    light_load_below: float = 0.25
    maximum_load_from: float = 0.5

    def __post_init__(self) -> None:
        if not self.temperature_min_c < self.temperature_max_c:
            raise ValueError(
                f"temperature_min_c must be < temperature_max_c, got "
                f"{self.temperature_min_c} and {self.temperature_max_c}"
            )
        if not 0 < self.light_load_below <= self.maximum_load_from:
            raise ValueError(
                f"need 0 < light_load_below <= maximum_load_from, got "
                f"{self.light_load_below} and {self.maximum_load_from}"
            )


class _Weeks:
    """Sums per firm and week over ``[first_monday, first_monday + 7 * n)``."""

    def __init__(self, firms: pd.Index, span: Span) -> None:
        self.firms = firms
        self.first_monday = int(monday_of(np.array([span.first_day]))[0])
        self.n = (int(monday_of(np.array([span.last_day]))[0]) - self.first_monday) // 7 + 1
        self.shape = (len(firms), self.n)

    def firm(self, column: pa.ChunkedArray) -> np.ndarray:
        ids = column.to_numpy(zero_copy_only=False)
        return np.asarray(self.firms.get_indexer(ids), dtype=np.int64)

    def sum(self, firm: np.ndarray, day: np.ndarray, weights: np.ndarray | float) -> np.ndarray:
        """(firms, weeks) sums of ``weights`` by the week of ``day``."""
        week = (monday_of(day) - self.first_monday) // 7
        ok = (firm >= 0) & (day != NULL_DAY) & (week >= 0) & (week < self.n)
        size = self.shape[0] * self.n
        flat = np.where(ok, firm * self.n + week, size)
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), flat.shape)
        return np.bincount(flat, weights=w, minlength=size + 1)[:size].reshape(self.shape)

    def mondays(self) -> np.ndarray:
        return self.first_monday + 7 * np.arange(self.n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _f64(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).cast(pa.float64()).fill_null(0.0)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _installed_kw(t: Mapping[str, pa.Table], weeks: _Weeks) -> tuple[np.ndarray, np.ndarray]:
    """Machines and rated kW installed per firm."""
    machines = t["machines"]
    firm = weeks.firm(machines.column("firm_id"))
    known = firm >= 0
    F = len(weeks.firms)
    count = np.bincount(firm[known], minlength=F).astype(np.float64)
    rated = np.bincount(firm[known], weights=_f64(machines, "rated_kw")[known], minlength=F)
    return count, rated


def _electricity(
    t: Mapping[str, pa.Table], weeks: _Weeks, rated_kw: np.ndarray, settings: WeeklySettings
) -> dict[str, np.ndarray]:
    """Energy, night share, metered hours and load-type shares."""
    elec = t["electricity_15min"]
    firm = weeks.firm(elec.column("firm_id"))
    local = local_seconds(elec.column("ts"))
    day, hour = local // DAY_S, (local // 3600) % 24
    kwh = _f64(elec, "kwh")
    night = (hour >= _NIGHT_STARTS_H) | (hour < _NIGHT_ENDS_H)
    total = weeks.sum(firm, day, kwh)
    # One interval per firm and timestamp, whatever the number of meters.
    readings = pd.DataFrame(
        {"firm": firm, "local": local, "kwh": kwh, "load": elec.column("load_type").to_pandas()}
    )
    intervals = (
        readings[firm >= 0]
        .groupby(["firm", "local"], sort=True)
        .agg(kwh=("kwh", "sum"), load=("load", "first"))
    )
    i_firm = intervals.index.get_level_values("firm").to_numpy().astype(np.int64)
    i_day = intervals.index.get_level_values("local").to_numpy().astype(np.int64) // DAY_S
    load = intervals["load"].to_numpy(dtype=object)
    share_of_rated = _ratio(intervals["kwh"].to_numpy() / _INTERVAL_H, rated_kw[i_firm])
    derived = np.select(
        [
            share_of_rated < settings.light_load_below,
            share_of_rated < settings.maximum_load_from,
            share_of_rated >= settings.maximum_load_from,
        ],
        list(LOAD_TYPES),
        default="",
    )
    load = np.where(pd.isna(load), derived, load)
    classified = weeks.sum(i_firm, i_day, (load != "").astype(np.float64))
    out = {
        "metered_hours": weeks.sum(i_firm, i_day, _INTERVAL_H),
        "electricity_kwh": total,
        "night_share": _ratio(weeks.sum(firm, day, np.where(night, kwh, 0.0)), total),
    }
    for name in LOAD_TYPES:
        share = _ratio(weeks.sum(i_firm, i_day, (load == name).astype(np.float64)), classified)
        out[f"{name}_load_share"] = share
    return out


def _utilities_and_climate(
    t: Mapping[str, pa.Table], weeks: _Weeks, settings: WeeklySettings
) -> dict[str, np.ndarray]:
    util = t["utilities_hourly"]
    u_firm, u_day = weeks.firm(util.column("firm_id")), day_numbers(util.column("ts"))
    clim = t["climate_hourly"]
    c_firm, c_day = weeks.firm(clim.column("firm_id")), day_numbers(clim.column("ts"))
    temperature = _f64(clim, "temperature_c")
    outside = (temperature < settings.temperature_min_c) | (
        temperature > settings.temperature_max_c
    )
    humid = _f64(clim, "humidity_pct") >= settings.humid_pct
    return {
        "gas_m3": weeks.sum(u_firm, u_day, _f64(util, "gas_m3")),
        "water_m3": weeks.sum(u_firm, u_day, _f64(util, "water_m3")),
        "temperature_excursion_hours": weeks.sum(c_firm, c_day, outside.astype(np.float64)),
        "humid_hours": weeks.sum(c_firm, c_day, humid.astype(np.float64)),
    }


def _production(t: Mapping[str, pa.Table], weeks: _Weeks) -> dict[str, np.ndarray]:
    mes = t["mes_daily"]
    firm, day = weeks.firm(mes.column("firm_id")), day_numbers(mes.column("day"))
    return {
        "units_produced": weeks.sum(firm, day, _f64(mes, "units_produced")),
        "units_defective": weeks.sum(firm, day, _f64(mes, "units_defective")),
    }


def _run_hours(t: Mapping[str, pa.Table], weeks: _Weeks) -> np.ndarray:
    """Run hours per week, a run that spans weeks split at midnight between Sunday and Monday."""
    runs = t["machine_runs"]
    firm = weeks.firm(runs.column("firm_id"))
    start = local_seconds(runs.column("run_start"))
    utc = [runs.column(c).cast(pa.int64()).to_numpy() for c in ("run_start", "run_end")]
    end = start + (utc[1] - utc[0])
    monday = monday_of(start // DAY_S)
    hours = np.zeros(weeks.shape)
    offset = 0
    while len(end) and (end > (monday + offset) * DAY_S).any():
        lo, hi = (monday + offset) * DAY_S, (monday + offset + 7) * DAY_S
        part = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None)
        hours += weeks.sum(firm, monday + offset, part / 3600.0)
        offset += 7
    return hours


def _machine_events(t: Mapping[str, pa.Table], weeks: _Weeks) -> dict[str, np.ndarray]:
    events = t["machine_events"]
    firm, day = weeks.firm(events.column("firm_id")), day_numbers(events.column("ts"))
    observations = weeks.sum(firm, day, 1.0)
    return {
        "machine_observations": observations,
        "downtime_hours": weeks.sum(firm, day, _f64(events, "downtime_min") / 60.0),
        "failure_rate": _ratio(weeks.sum(firm, day, _f64(events, "machine_failure")), observations),
        "tool_wear_failure_rate": _ratio(weeks.sum(firm, day, _f64(events, "twf")), observations),
        "mean_tool_wear_min": _ratio(
            weeks.sum(firm, day, _f64(events, "tool_wear_min")), observations
        ),
    }


def _erp(t: Mapping[str, pa.Table], weeks: _Weeks) -> dict[str, np.ndarray]:
    """Orders placed and shipped in the week; receivables open and overdue at its end."""
    orders = t["erp_orders"]
    firm = weeks.firm(orders.column("firm_id"))
    quantity, amount = _f64(orders, "quantity"), _f64(orders, "amount_cny")
    placed, shipped = (
        day_numbers(orders.column("placed_on")),
        day_numbers(orders.column("shipped_on")),
    )
    due, paid = day_numbers(orders.column("due_on")), day_numbers(orders.column("paid_on"))
    F = len(weeks.firms)
    open_, overdue = np.zeros(weeks.shape), np.zeros(weeks.shape)
    known = firm >= 0
    for w, monday in enumerate(weeks.mondays()):
        end = monday + 7
        unpaid = (paid == NULL_DAY) | (paid >= end)
        is_open = known & (shipped != NULL_DAY) & (shipped < end) & unpaid
        late = is_open & (due != NULL_DAY) & (due < end)
        open_[:, w] = np.bincount(firm[is_open], weights=amount[is_open], minlength=F)
        overdue[:, w] = np.bincount(firm[late], weights=amount[late], minlength=F)
    return {
        "orders_placed": weeks.sum(firm, placed, 1.0),
        "order_value_cny": weeks.sum(firm, placed, amount),
        "units_shipped": weeks.sum(firm, shipped, quantity),
        "shipped_value_cny": weeks.sum(firm, shipped, amount),
        "receivables_cny": open_,
        "receivables_overdue_cny": overdue,
        "receivable_overdue_ratio": _ratio(overdue, open_),
    }


def weekly_indicators(
    tables: Mapping[str, pa.Table], *, span: Span | None, settings: WeeklySettings
) -> pd.DataFrame:
    """The :data:`WEEKLY_COLUMNS` of every registered firm and week of ``span``."""
    firms = pd.Index(sorted(set(tables["machines"].column("firm_id").to_pylist())))
    if span is None or len(firms) == 0:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in WEEKLY_COLUMNS})
    weeks = _Weeks(firms, span)
    machines, rated_kw = _installed_kw(tables, weeks)
    values = _electricity(tables, weeks, rated_kw, settings)
    values |= _utilities_and_climate(tables, weeks, settings)
    values |= _production(tables, weeks)
    values |= _machine_events(tables, weeks)
    values |= _erp(tables, weeks)
    values["run_hours"] = _run_hours(tables, weeks)
    values["energy_kwh_eq"] = values["electricity_kwh"] + GAS_KWH_PER_M3 * values["gas_m3"]
    good = values["units_produced"] - values["units_defective"]
    values["energy_per_unit"] = _ratio(values["energy_kwh_eq"], good)
    values["defect_rate"] = _ratio(values["units_defective"], values["units_produced"])
    machine_hours = machines[:, None] * values["metered_hours"]
    values["utilisation"] = _ratio(values["run_hours"], machine_hours)
    busy = values["run_hours"] + values["downtime_hours"]
    values["idle_hours"] = np.clip(machine_hours - busy, 0.0, None)
    return _rows(weeks, values)


def _rows(weeks: _Weeks, values: dict[str, np.ndarray]) -> pd.DataFrame:
    F, W = weeks.shape
    mondays = weeks.mondays()
    labels = np.asarray([iso_week(int(m)) for m in mondays], dtype=object)
    firm = np.repeat(np.asarray(weeks.firms, dtype=object), W)
    week = np.tile(labels, F)
    data: dict[str, object] = {
        "row_id": [f"{f}-{w}" for f, w in zip(firm, week, strict=True)],
        "firm_id": firm,
        "week": week,
        "week_start": np.tile([str(np.datetime64(int(m), "D")) for m in mondays], F).astype(object),
    }
    for name in WEEKLY_COLUMNS[4:]:
        column = values[name].reshape(-1)
        data[name] = np.rint(column).astype(np.int64) if name in _COUNTS else column
    return pd.DataFrame(data)
