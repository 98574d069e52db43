"""Monthly risk indicators computed at a factory node from its own raw series.

This is the edge reduction the IoT filing describes: raw meter, machine, MES and ERP data
stay at the factory; only one row per firm and month of de-identified indicators leaves it,
and only for training. Several indicators cross-check one source against another (交叉验真):
energy against reported output, machine cycles against MES counts, MES output against ERP
production, shipments against orders.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from participants.demo.columns import IOT_INDICATOR_SPECS
from participants.demo.raw_tables import RawTables, read_raw_tables

__all__ = [
    "INDICATOR_COLUMNS",
    "IndicatorFrame",
    "compute_monthly_indicators",
    "feature_frame",
    "indicators_from_raw",
    "label_rows",
]

logger = logging.getLogger(__name__)

INDICATOR_COLUMNS: Final[tuple[str, ...]] = tuple(spec.name for spec in IOT_INDICATOR_SPECS)
"""The indicators, in column order; units and ranges in :data:`IOT_INDICATOR_SPECS`."""

GAS_KWH_PER_M3: Final = 10.0
_TRAILING_MONTHS: Final = 3
_DRIFT_BASELINE_MONTHS: Final = 6
_HUMID_PCT: Final = 85.0
_NIGHT_STARTS_H: Final = 22
_NIGHT_ENDS_H: Final = 6
_NULL: Final = -(10**9)
"""Stands for a missing date (epoch day) and its month."""


@dataclass(frozen=True)
class IndicatorFrame:
    """Indicators as (firms x months) arrays before they become table rows."""

    firm_ids: list[str]
    month_labels: list[str]
    values: dict[str, np.ndarray]


class _Calendar:
    """Maps timestamps and dates to month numbers relative to the window start."""

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        start = pd.Timestamp(metadata["window_start"])
        self.months = int(metadata["months"])
        self.base = start.year * 12 + start.month - 1
        self.labels = [
            (start + pd.DateOffset(months=m)).strftime("%Y-%m") for m in range(self.months)
        ]
        self.horizon = int(metadata["label_horizon_months"])
        until = pd.Timestamp(metadata["outcomes_observed_until"])
        self.outcome_month = until.year * 12 + until.month - 1 - self.base  # exclusive

        # Month boundaries from well before the window to well after it, as local epoch
        # seconds and epoch days, so that months are found by binary search.
        self.first = -24
        last = self.base + self.months + self.horizon + 2
        months = np.arange(self.base + self.first, last, dtype=np.int64)
        edges = (months - 1970 * 12).astype("datetime64[M]")
        self.edge_days = edges.astype("datetime64[D]").astype(np.int64)
        self.edge_seconds = self.edge_days * 86_400

    def month_start_day(self, month: int) -> int:
        """Epoch day number of the first local day of relative month ``month``."""
        return int(self.edge_days[month - self.first])

    def of_timestamps(self, column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(relative month, local hour) of each timestamp."""
        local = _local_seconds(column)
        months = np.searchsorted(self.edge_seconds, local, side="right") - 1 + self.first
        return months, (local // 3600) % 24

    def of_dates(self, column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(relative month, epoch day) of each date; nulls get ``_NULL`` for both."""
        days = column.cast(pa.int32()).fill_null(_NULL).to_numpy().astype(np.int64)
        months = np.searchsorted(self.edge_days, days, side="right") - 1 + self.first
        return np.where(days == _NULL, _NULL, months), days


def _epoch_seconds(column: pa.ChunkedArray) -> np.ndarray:
    """Seconds since the epoch (UTC) of a timestamp column of any unit."""
    return np.asarray(
        column.cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()).to_numpy(), dtype=np.int64
    )


def _local_seconds(column: pa.ChunkedArray) -> np.ndarray:
    """Local wall-clock seconds since the epoch of a timezone-aware timestamp column.

    The UTC offset is looked up once per hour of the covered range (offsets change only on
    whole hours) instead of once per value, which matters for 15-minute series.
    """
    utc = _epoch_seconds(column)
    if len(utc) == 0:
        return utc
    tz = column.type.tz or "UTC"
    first_hour = int(utc.min()) // 3600
    hours = pd.date_range(
        pd.Timestamp(first_hour * 3600, unit="s", tz="UTC"),
        periods=int(utc.max()) // 3600 - first_hour + 1,
        freq="h",
    )
    local_hours = hours.tz_convert(tz).tz_localize(None).as_unit("s")
    offset_s = local_hours.asi8 - hours.tz_localize(None).as_unit("s").asi8
    return np.asarray(utc + offset_s[utc // 3600 - first_hour], dtype=np.int64)


def _firm_index(column: pa.ChunkedArray, firms: pd.Index) -> np.ndarray:
    """Position in ``firms`` of each row's firm id (-1 when unknown)."""
    encoded = pc.dictionary_encode(column) if not pa.types.is_dictionary(column.type) else column
    combined = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
    lookup = firms.get_indexer(combined.dictionary.to_pylist())
    return np.asarray(lookup[combined.indices.to_numpy(zero_copy_only=False)], dtype=np.int64)


class _Grouper:
    """Sums values per firm and relative month in ``[lo, hi)``; other rows are dropped."""

    def __init__(self, firm: np.ndarray, month: np.ndarray, n_firms: int, lo: int, hi: int):
        self.shape = (n_firms, hi - lo)
        self.size = n_firms * (hi - lo)
        ok = (firm >= 0) & (month >= lo) & (month < hi)
        self.flat = np.where(ok, firm * (hi - lo) + (month - lo), self.size)

    def sum(self, weights: np.ndarray) -> np.ndarray:
        """(F, hi - lo) sums of ``weights``."""
        totals = np.bincount(self.flat, weights=weights, minlength=self.size + 1)
        return totals[: self.size].reshape(self.shape)


def _monthly_sum(
    firm: np.ndarray, month: np.ndarray, weights: np.ndarray, n_firms: int, lo: int, hi: int
) -> np.ndarray:
    """Sum of ``weights`` per firm and relative month in ``[lo, hi)``, as (F, hi - lo)."""
    return _Grouper(firm, month, n_firms, lo, hi).sum(weights)


def _ratio(num: np.ndarray, den: np.ndarray, *, default: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, default, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _trend(series: np.ndarray, *, lookback: int) -> np.ndarray:
    """Relative change of each month against the mean of the previous ``lookback`` months."""
    out = np.zeros_like(series, dtype=np.float64)
    for m in range(1, series.shape[1]):
        base = series[:, max(0, m - lookback) : m].mean(axis=1)
        out[:, m] = _ratio(series[:, m], base, default=1.0) - 1.0
    return np.clip(out, -1.0, 5.0)


def _drift(series: np.ndarray, *, lookback: int) -> np.ndarray:
    """Relative change of each month against the median of the previous ``lookback`` months."""
    out = np.zeros_like(series, dtype=np.float64)
    for m in range(1, series.shape[1]):
        base = np.median(series[:, max(0, m - lookback) : m], axis=1)
        out[:, m] = _ratio(series[:, m], base, default=1.0) - 1.0
    return np.clip(out, -1.0, 5.0)


def _top_share(
    firm: np.ndarray, month: np.ndarray, partner: np.ndarray, value: np.ndarray, F: int, M: int
) -> np.ndarray:
    """Share of the largest partner in each firm's trailing three-month value."""
    codes, partner_idx = np.unique(partner, return_inverse=True)
    P = max(len(codes), 1)
    out = np.zeros((F, M))
    for m in range(M):
        ok = (firm >= 0) & (month > m - _TRAILING_MONTHS) & (month <= m)
        totals = np.bincount(
            firm[ok] * P + partner_idx[ok], weights=value[ok], minlength=F * P
        ).reshape(F, P)
        out[:, m] = _ratio(totals.max(axis=1), totals.sum(axis=1))
    return out


def _columns_f64(table: pa.Table, *names: str) -> list[np.ndarray]:
    return [table.column(n).to_numpy().astype(np.float64) for n in names]


def _energy_and_climate(
    t: Mapping[str, pa.Table], cal: _Calendar, firms: pd.Index
) -> dict[str, np.ndarray]:
    """Monthly energy (electricity plus gas), its night share, and humid workshop hours."""
    F, M = len(firms), cal.months
    elec = t["electricity_15min"]
    month, hour = cal.of_timestamps(elec.column("ts"))
    by_month = _Grouper(_firm_index(elec.column("firm_id"), firms), month, F, 0, M)
    (kwh,) = _columns_f64(elec, "kwh")
    night = (hour >= _NIGHT_STARTS_H) | (hour < _NIGHT_ENDS_H)
    kwh_m = by_month.sum(kwh)

    util = t["utilities_hourly"]
    u_month, _ = cal.of_timestamps(util.column("ts"))
    (gas,) = _columns_f64(util, "gas_m3")
    gas_m = _monthly_sum(_firm_index(util.column("firm_id"), firms), u_month, gas, F, 0, M)

    clim = t["climate_hourly"]
    c_month, _ = cal.of_timestamps(clim.column("ts"))
    c_by_month = _Grouper(_firm_index(clim.column("firm_id"), firms), c_month, F, 0, M)
    humid = (clim.column("humidity_pct").to_numpy() >= _HUMID_PCT).astype(np.float64)
    return {
        "energy": kwh_m + GAS_KWH_PER_M3 * gas_m,
        "night_shift_share": _ratio(by_month.sum(np.where(night, kwh, 0.0)), kwh_m),
        "humid_hours_share": _ratio(c_by_month.sum(humid), c_by_month.sum(np.ones_like(humid))),
    }


def _machine_activity(
    t: Mapping[str, pa.Table], cal: _Calendar, firms: pd.Index
) -> dict[str, np.ndarray]:
    """Monthly run hours, utilisation of the installed machines and machine cycles."""
    F, M = len(firms), cal.months
    n_machines = np.bincount(_firm_index(t["machines"].column("firm_id"), firms), minlength=F)
    days = np.array([cal.month_start_day(m + 1) - cal.month_start_day(m) for m in range(M)])
    runs = t["machine_runs"]
    month, _ = cal.of_timestamps(runs.column("run_start"))
    run_s = _epoch_seconds(runs.column("run_end")) - _epoch_seconds(runs.column("run_start"))
    firm = _firm_index(runs.column("firm_id"), firms)
    run_h = _monthly_sum(firm, month, run_s / 3600.0, F, 0, M)
    counters = t["machine_counters_daily"]
    k_month, _ = cal.of_dates(counters.column("day"))
    (opens,) = _columns_f64(counters, "mould_opens")
    firm = _firm_index(counters.column("firm_id"), firms)
    return {
        "run_hours": run_h,
        "utilisation": _ratio(run_h, n_machines[:, None] * 24.0 * days[None, :]),
        "cycles": _monthly_sum(firm, k_month, opens, F, 0, M),
    }


def _mes_output(
    t: Mapping[str, pa.Table], cal: _Calendar, firms: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Monthly units produced and units defective, as the MES reports them."""
    mes = t["mes_daily"]
    month, _ = cal.of_dates(mes.column("day"))
    by_month = _Grouper(_firm_index(mes.column("firm_id"), firms), month, len(firms), 0, cal.months)
    produced, defective = _columns_f64(mes, "units_produced", "units_defective")
    return by_month.sum(produced), by_month.sum(defective)


def feature_frame(raw: RawTables) -> IndicatorFrame:
    """The indicators of every firm and month of the node's observation window."""
    cal = _Calendar(raw.metadata)
    t = raw.tables
    firms = pd.Index(sorted(set(t["machines"].column("firm_id").to_pylist())))
    energy = _energy_and_climate(t, cal, firms)
    machines = _machine_activity(t, cal, firms)
    produced, defective = _mes_output(t, cal, firms)
    good = produced - defective
    epu = _ratio(energy["energy"], good, default=0.0)
    values: dict[str, np.ndarray] = {
        "energy_per_unit": epu,
        "energy_per_unit_drift": _drift(epu, lookback=_DRIFT_BASELINE_MONTHS),
        "energy_trend": _trend(energy["energy"], lookback=_TRAILING_MONTHS),
        "utilisation": machines["utilisation"],
        "run_hours_trend": _trend(machines["run_hours"], lookback=_TRAILING_MONTHS),
        "night_shift_share": energy["night_shift_share"],
        "humid_hours_share": energy["humid_hours_share"],
        "mould_opens_per_unit": _ratio(machines["cycles"], produced),
        "defect_rate": _ratio(defective, produced),
    }
    values.update(_erp_indicators(raw, cal, firms, good))
    return IndicatorFrame(
        firm_ids=list(firms),
        month_labels=cal.labels,
        values={name: values[name] for name in INDICATOR_COLUMNS},
    )


def _trailing_sum(series: np.ndarray, end: int, months: int) -> np.ndarray:
    """Sum of the ``months`` columns ending at column ``end`` (inclusive)."""
    return np.asarray(series[:, end - months + 1 : end + 1].sum(axis=1))


def _order_flow(
    placed_q: np.ndarray, placed_v: np.ndarray, shipped_q: np.ndarray, lo: int, M: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shipped over ordered quantity (trailing quarter) and order growth (quarter on quarter).

    The inputs are monthly arrays whose first column is relative month ``lo``.
    """
    k = _TRAILING_MONTHS
    ship_ratio = np.zeros((placed_q.shape[0], M))
    growth = np.zeros_like(ship_ratio)
    for m in range(M):
        i = m - lo
        ship_ratio[:, m] = _ratio(
            _trailing_sum(shipped_q, i, k), _trailing_sum(placed_q, i, k), default=1.0
        )
        recent = _trailing_sum(placed_v, i, k)
        growth[:, m] = _ratio(recent, _trailing_sum(placed_v, i - k, k), default=1.0) - 1
    return np.clip(ship_ratio, 0.0, 5.0), np.clip(growth, -1.0, 5.0)


def _receivables(
    firm: np.ndarray,
    amount: np.ndarray,
    days: dict[str, np.ndarray],
    cal: _Calendar,
    F: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Overdue share of receivables and their amount-weighted days past due, at month ends."""
    shipped, due, paid = days["shipped"], days["due"], days["paid"]
    overdue_ratio = np.zeros((F, cal.months))
    overdue_days = np.zeros_like(overdue_ratio)
    for m in range(cal.months):
        end = cal.month_start_day(m + 1)
        unpaid = (paid == _NULL) | (paid >= end)
        open_ = (firm >= 0) & (shipped != _NULL) & (shipped < end) & unpaid
        late = open_ & (due != _NULL) & (due < end)
        receivable = np.bincount(firm[open_], weights=amount[open_], minlength=F)
        overdue = np.bincount(firm[late], weights=amount[late], minlength=F)
        late_days = amount[late] * (end - due[late])
        overdue_ratio[:, m] = _ratio(overdue, receivable)
        overdue_days[:, m] = _ratio(np.bincount(firm[late], late_days, minlength=F), overdue)
    return overdue_ratio, overdue_days


def _erp_indicators(
    raw: RawTables, cal: _Calendar, firms: pd.Index, mes_good: np.ndarray
) -> dict[str, np.ndarray]:
    """Indicators from sales and purchase orders (history before the window included)."""
    F, M = mes_good.shape
    lo = -2 * _TRAILING_MONTHS
    orders = raw.tables["erp_orders"]
    firm = _firm_index(orders.column("firm_id"), firms)
    qty, amount = _columns_f64(orders, "quantity", "amount_cny")
    placed_m, _ = cal.of_dates(orders.column("placed_on"))
    produced_m, _ = cal.of_dates(orders.column("produced_on"))
    shipped_m, shipped_d = cal.of_dates(orders.column("shipped_on"))
    days = {
        "shipped": shipped_d,
        "due": cal.of_dates(orders.column("due_on"))[1],
        "paid": cal.of_dates(orders.column("paid_on"))[1],
    }
    placed = _Grouper(firm, placed_m, F, lo, M)
    ship_ratio, growth = _order_flow(
        placed.sum(qty), placed.sum(amount), _monthly_sum(firm, shipped_m, qty, F, lo, M), lo, M
    )
    erp_produced = _monthly_sum(firm, produced_m, qty, F, 0, M)
    overdue_ratio, overdue_days = _receivables(firm, amount, days, cal, F)
    shipped_value = np.where(shipped_d != _NULL, amount, 0.0)
    customers = orders.column("customer_no").to_numpy()
    purchases = raw.tables["erp_purchases"]
    p_month, _ = cal.of_dates(purchases.column("ordered_on"))
    (p_amount,) = _columns_f64(purchases, "amount_cny")
    p_firm = _firm_index(purchases.column("firm_id"), firms)
    suppliers = purchases.column("supplier_no").to_numpy()
    mismatch = np.abs(_ratio(mes_good, erp_produced, default=1.0) - 1)
    return {
        "mes_erp_mismatch": np.clip(mismatch, 0.0, 10.0),
        "ship_to_order_ratio": ship_ratio,
        "order_growth": growth,
        "receivable_overdue_ratio": overdue_ratio,
        "receivable_overdue_days": overdue_days,
        "top_customer_share": _top_share(firm, shipped_m, customers, shipped_value, F, M),
        "top_supplier_share": _top_share(p_firm, p_month, suppliers, p_amount, F, M),
    }


def label_rows(frame: IndicatorFrame, raw: RawTables) -> pd.DataFrame:
    """Rows of ``frame`` with their label from the node's repayment-outcome history.

    ``label`` is 1 when the firm's first default or 90+ days past due falls within the
    ``label_horizon_months`` after the month; months in which the firm is already in default,
    or whose horizon is not yet observed, are dropped.
    """
    cal = _Calendar(raw.metadata)
    firms = pd.Index(frame.firm_ids)
    F, M = len(firms), cal.months
    outcomes = raw.tables["credit_outcomes"]
    o_firm = _firm_index(outcomes.column("firm_id"), firms)
    _, o_day = cal.of_dates(outcomes.column("event_on"))
    first_event = np.full(F, np.iinfo(np.int64).max)
    known = o_firm >= 0
    np.minimum.at(first_event, o_firm[known], o_day[known])

    month_end = np.array([cal.month_start_day(m + 1) for m in range(M)])
    horizon_end = np.array([cal.month_start_day(m + 1 + cal.horizon) for m in range(M)])
    observed = np.arange(M) + 1 + cal.horizon <= cal.outcome_month
    keep = (first_event[:, None] >= month_end[None, :]) & observed[None, :]
    label = first_event[:, None] < horizon_end[None, :]

    firm_idx, month_idx = np.nonzero(keep)
    firm_col = np.asarray(frame.firm_ids, dtype=object)[firm_idx]
    month_col = np.asarray(frame.month_labels, dtype=object)[month_idx]
    data: dict[str, Any] = {
        "row_id": [f"{f}-{m}" for f, m in zip(firm_col, month_col, strict=True)],
        "firm_id": firm_col,
        "month": month_col,
    }
    for name in INDICATOR_COLUMNS:
        data[name] = frame.values[name][firm_idx, month_idx]
    data["label"] = label[firm_idx, month_idx].astype(np.int64)
    return pd.DataFrame(data)


def indicators_from_raw(raw: RawTables) -> pd.DataFrame:
    """The labelled indicator table of a node, from its raw tables in memory."""
    table = label_rows(feature_frame(raw), raw)
    logger.info("computed %d indicator rows for %d firms", len(table), table["firm_id"].nunique())
    return table


def compute_monthly_indicators(raw_dir: Path) -> pd.DataFrame:
    """Read a factory node's raw series from ``raw_dir`` and reduce them to monthly indicators.

    Columns: ``row_id`` (``<firm_id>-<YYYY-MM>``), ``firm_id`` (USCC), ``month``, the
    :data:`INDICATOR_COLUMNS` and ``label``. Runs at the node; raw series never leave it.
    """
    return indicators_from_raw(read_raw_tables(Path(raw_dir)))
