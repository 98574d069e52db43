"""Cross-verification (交叉验真) at the factory node: does what the firm declares (ERP
invoices, MES production) match what its plant physically did (energy)?

Four rules and one model, each against the node's own history (a plant's units per kWh
are its own; no fleet-wide constant is assumed):

- ``production_during_shutdown``: days on which MES declares production while the meter
  shows the plant near its idle level;
- ``sales_without_energy``: a month whose invoiced units per kWh lie far above the plant's
  usual ratio (robust: median and MAD of the other months);
- ``mes_erp_mismatch``: a month whose MES output and invoiced units part ways;
- ``duplicate_invoices``: invoices with the same customer, date and amount under
  different ids;
- ``declared_output_anomaly`` (the model): a Huber regression of daily MES units on daily
  energy, fitted on the node's history; days whose residual lies beyond ``model_z`` robust
  standard deviations, and whose output beyond what the energy explains is at least
  ``declared_share`` of a median working day's (a part day's small batch is no finding).

A :class:`Flag` carries the figures that triggered it and a sentence for a credit officer.
Flags hold aggregates only (totals, ratios, counts, dates), never a reading or an invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.linear_model import HuberRegressor
from sklearn.preprocessing import SplineTransformer

from .activity import FactoryActivity

__all__ = ["RULES", "CheckSettings", "Flag", "cross_verify"]

RULES: Final = (
    "declared_output_anomaly",
    "duplicate_invoices",
    "mes_erp_mismatch",
    "production_during_shutdown",
    "sales_without_energy",
)
#: MAD to standard deviation of a normal distribution.
_MAD_SIGMA: Final = 1.4826


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks (defaults measured on the steel plant, BENCHMARKS.md)."""

    #: A day is a shutdown when its energy is below this share of the median day.
    idle_share: float = 0.35
    #: ... and production on it is "declared" above this share of the median day's output.
    declared_share: float = 0.25
    #: ... and above this multiple of what the day's energy supports at the usual ratio.
    shutdown_excess: float = 2.0
    #: A month's ratio is flagged beyond this many robust standard deviations ...
    month_z: float = 5.0
    #: ... and at least this relative excess over the usual ratio (units per kWh vary with
    #: the product mix; invoiced against MES units should agree far closer).
    month_excess: float = 0.25
    mismatch_excess: float = 0.10
    #: The model's residual threshold, in robust standard deviations.
    model_z: float = 8.0


@dataclass(frozen=True)
class Flag:
    """One inconsistency: which check, over which period, the figures, the words."""

    rule: str
    start: str
    end: str
    figures: Mapping[str, float] = field(default_factory=dict)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "start": self.start,
            "end": self.end,
            "figures": dict(self.figures),
            "text": self.text,
        }


def cross_verify(activity: FactoryActivity, *, settings: CheckSettings | None = None) -> list[Flag]:
    """Every flag the checks raise on ``activity``, by period."""
    settings = settings or CheckSettings()
    daily = activity.daily()
    metered = daily[daily["metered"]]
    flags = [
        *_shutdown_production(metered, settings),
        *_monthly_ratio(daily, settings, rule="sales_without_energy"),
        *_monthly_ratio(daily, settings, rule="mes_erp_mismatch"),
        *_duplicates(activity.invoices),
        *_model(metered, settings),
    ]
    return sorted(flags, key=lambda f: (f.start, f.rule))


def _day(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _runs(mask: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive runs of True days as (first, last)."""
    runs, start, last = [], None, None
    for day, on in mask.items():
        if on and start is None:
            start = day
        if on:
            last = day
        elif start is not None:
            runs.append((start, last))
            start = None
    if start is not None:
        runs.append((start, last))
    return runs  # type: ignore[return-value]


def _shutdown_production(daily: pd.DataFrame, s: CheckSettings) -> list[Flag]:
    usual_kwh = float(daily["energy_kwh"].median())
    usual_units = float(daily["mes_units"].median())
    busy = daily[daily["energy_kwh"] >= usual_kwh]
    if usual_kwh <= 0 or usual_units <= 0 or busy["energy_kwh"].sum() <= 0:
        return []
    per_kwh = float(busy["mes_units"].sum() / busy["energy_kwh"].sum())
    idle = daily["energy_kwh"] < s.idle_share * usual_kwh
    declared = daily["mes_units"] > s.declared_share * usual_units
    unsupported = daily["mes_units"] > s.shutdown_excess * per_kwh * daily["energy_kwh"]
    flags = []
    for first, last in _runs(idle & declared & unsupported):
        span = daily.loc[first:last]
        units, kwh, days = (
            float(span["mes_units"].sum()),
            float(span["energy_kwh"].sum()),
            len(span),
        )
        flags.append(
            Flag(
                rule="production_during_shutdown",
                start=_day(first),
                end=_day(last),
                figures={
                    "mes_units": units,
                    "energy_kwh": kwh,
                    "days": days,
                    "usual_kwh_per_day": usual_kwh,
                    "units_per_kwh": per_kwh,
                },
                text=f"MES declares {units:,.0f} units over {days} day(s) while the plant used "
                f"{kwh:,.0f} kWh, {kwh / days / usual_kwh:.0%} of its usual {usual_kwh:,.0f} "
                f"kWh a day (enough for about {kwh * per_kwh:,.0f} units): the line looks "
                "shut down",
            )
        )
    return flags


def _monthly_ratio(daily: pd.DataFrame, s: CheckSettings, *, rule: str) -> list[Flag]:
    months = daily.groupby(daily.index.to_period("M")).sum()
    if rule == "sales_without_energy":
        num, den, what, per = months["invoiced_units"], months["energy_kwh"], "invoiced", "kWh"
    else:
        num, den, what, per = months["invoiced_units"], months["mes_units"], "invoiced", "MES unit"
    usable = den > 0
    ratio = (num[usable] / den[usable]).astype(float)
    if len(ratio) < 4:
        return []
    flags = []
    for month, value in ratio.items():
        others = ratio.drop(index=month)
        usual = float(others.median())
        spread = _MAD_SIGMA * float((others - usual).abs().median())
        if usual <= 0:
            continue
        excess = value / usual - 1
        z = (value - usual) / spread if spread > 0 else np.inf
        least = s.month_excess
        if rule == "mes_erp_mismatch":
            excess, z, least = abs(excess), abs(z), s.mismatch_excess
        if excess < least or z < s.month_z:
            continue
        supported = float(den[month]) * usual
        flags.append(
            Flag(
                rule=rule,
                start=str(month.start_time.date()),
                end=str(month.end_time.date()),
                figures={
                    "ratio": float(value),
                    "usual_ratio": usual,
                    "z": float(z),
                    "invoiced_units": float(num[month]),
                    "supported_units": supported,
                },
                text=f"{month}: {what} {float(num[month]):,.0f} units, {value / usual:.2f} times "
                f"what its {'energy use' if per == 'kWh' else 'MES output'} supports "
                f"({supported:,.0f} units at the usual {usual:.3g} per {per})",
            )
        )
    return flags


def _duplicates(invoices: pd.DataFrame) -> list[Flag]:
    frame = invoices.assign(day=pd.to_datetime(invoices["date"]).dt.normalize())
    groups = frame.groupby(["customer", "day", "amount"])["invoice_id"].nunique()
    flags = []
    for (_, day, amount), count in groups[groups > 1].items():
        flags.append(
            Flag(
                rule="duplicate_invoices",
                start=_day(day),
                end=_day(day),
                figures={"invoices": float(count), "amount": float(amount)},
                text=f"{count} invoices of {amount:,.2f} to the same customer on {_day(day)} "
                "under different numbers: possibly invoiced twice",
            )
        )
    return flags


def _model(daily: pd.DataFrame, s: CheckSettings) -> list[Flag]:
    """Huber regression of log output on log energy (and its square): a
    plant's output is roughly proportional to the energy above its idle load, with noise
    that grows with the output, which a log scale makes even."""
    if len(daily) < 30:
        return []
    energy = np.log1p(daily["energy_kwh"].to_numpy()).reshape(-1, 1)
    # A cubic spline of energy alone (the calendar is no alibi): idle days anchor its low
    # end, and part days (one shift of two) find their own level between idle and full.
    x = SplineTransformer(n_knots=5, degree=3, knots="quantile").fit_transform(energy)
    y = np.log1p(daily["mes_units"].to_numpy())
    model = HuberRegressor(max_iter=1000).fit(x, y)
    fitted = model.predict(x)
    residual = y - fitted
    centre = float(np.median(residual))
    spread = _MAD_SIGMA * float(np.median(np.abs(residual - centre)))
    if spread <= 0:
        return []
    z = (residual - centre) / spread
    working = daily["mes_units"][daily["mes_units"] > 0]
    material = s.declared_share * float(working.median()) if len(working) else 0.0
    flags = []
    for first, last in _runs(pd.Series(z > s.model_z, index=daily.index)):
        where = daily.index.get_indexer(daily.loc[first:last].index)
        units = float(daily["mes_units"].iloc[where].sum())
        expected = float(np.expm1(fitted[where]).clip(min=0).sum())
        if units - expected < material:  # too little to matter: a part day, a small batch
            continue
        flags.append(
            Flag(
                rule="declared_output_anomaly",
                start=_day(first),
                end=_day(last),
                figures={
                    "mes_units": units,
                    "expected_units": expected,
                    "z": float(z[where].max()),
                },
                text=f"MES declares {units:,.0f} units from {_day(first)} to {_day(last)}; the "
                f"plant's energy use explains about {expected:,.0f}",
            )
        )
    return flags
