"""Cross-verification at the factory node on the real steel plant's energy, with injected
inconsistencies.

Physical activity is real: the 35,040 fifteen-minute readings of the UCI "Steel Industry
Energy Consumption" plant for 2018 (`../shared/data/iot/Steel_industry_data.csv`). What the
firm declares is generated from it, as an honest firm's ERP and MES would report it: MES
units each day in proportion to the energy above the plant's idle load (0.5 units per kWh,
6 % day-to-day noise), invoiced zero to four days later to 25 customers in one to a few
invoices each (48 CNY a unit, 3 % price noise). Each trial draws a new declaration (its own
seed) and injects, one at a time, three inconsistencies: a month (February to December)
with extra invoices for 80 % to 150 % of its real output and no change on the meter or in
the MES (`sales_without_energy`); one to three invoices issued a second time under new
numbers (`duplicate_invoices`); seven days of a busy stretch replaced on the meter by the
plant's idle load (2.6 to 3.2 kWh a quarter hour) while the MES keeps declaring the real
days' output (`production_during_shutdown`). An injection counts as detected when a flag of
its kind covers its period (for the month also the MES/ERP mismatch, for the shutdown also
the model's `declared_output_anomaly`). Smaller injections (5 % to 30 % extra sales, one- to
three-day shutdowns) show where detection stops. The same trials without an injection count
the false alarms: every flag on them is one, per factory-year (a trial is one plant-year)
and per period checked (a month for the monthly checks, a day for the daily ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from .common import DATA_DIR, BenchError, progress, table

STEEL: Final = DATA_DIR / "iot" / "Steel_industry_data.csv"
TRIALS, QUICK_TRIALS = 100, 8
SEED: Final = 41
UNITS_PER_KWH: Final = 0.5
IDLE_KWH_PER_DAY: Final = 250.0
CUSTOMERS: Final = 25
PRICE: Final = 48.0
KINDS: Final = ("sales_without_energy", "duplicate_invoices", "production_during_shutdown")
#: The flags that detect each kind of injection.
DETECTED_BY: Final = {
    "sales_without_energy": {"sales_without_energy", "mes_erp_mismatch"},
    "duplicate_invoices": {"duplicate_invoices"},
    "production_during_shutdown": {"production_during_shutdown", "declared_output_anomaly"},
}
#: Smaller inconsistencies, to find where detection stops.
EXCESSES: Final = (0.05, 0.1, 0.2, 0.3)
SHUTDOWN_DAYS: Final = (1, 2, 3)
#: Periods each rule checks in one plant-year (for the false alarm rate per period).
_MONTHLY: Final = {"sales_without_energy", "mes_erp_mismatch"}


@dataclass(frozen=True)
class Injection:
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp


def steel_energy() -> pd.Series:
    """The plant's readings (kWh per quarter hour) indexed by time."""
    if not STEEL.exists():
        raise BenchError(f"{STEEL} is missing: the shared data folder must sit beside the repo")
    frame = pd.read_csv(STEEL, usecols=["date", "Usage_kWh"])
    stamps = pd.to_datetime(frame["date"], format="%d/%m/%Y %H:%M")
    series = pd.Series(frame["Usage_kWh"].to_numpy(dtype=float), index=stamps)
    return series.groupby(level=0).sum().sort_index()


def declare(energy: pd.Series, rng: np.random.Generator) -> tuple[pd.Series, pd.DataFrame]:
    """An honest firm's MES units per day and ERP invoices for ``energy``."""
    daily = energy.groupby(energy.index.normalize()).sum()
    active = (daily - IDLE_KWH_PER_DAY).clip(lower=0.0)
    units = (active * UNITS_PER_KWH * rng.lognormal(0.0, 0.06, len(daily))).round()
    rows = []
    serial = 0
    for day, made in units.items():
        if made <= 0:
            continue
        n = 1 + int(rng.poisson(2.0))
        shares = rng.dirichlet(np.ones(n))
        for share in shares:
            quantity = float(np.floor(made * share))
            if quantity <= 0:
                continue
            price = PRICE * float(rng.lognormal(0.0, 0.03))
            serial += 1
            lag = pd.Timedelta(days=int(rng.integers(0, 5)), hours=12)
            rows.append((f"INV{serial:07d}", day + lag,
                         f"C{int(rng.integers(CUSTOMERS)):02d}", quantity,
                         round(quantity * price, 2)))  # fmt: skip
    invoices = pd.DataFrame(rows, columns=["invoice_id", "date", "customer", "quantity", "amount"])
    return pd.Series(units.to_numpy(), index=daily.index), invoices


def inject(
    kind: str,
    energy: pd.Series,
    production: pd.Series,
    invoices: pd.DataFrame,
    rng: np.random.Generator,
    *,
    excess: tuple[float, float] = (0.8, 1.5),
    shutdown_days: int = 7,
) -> tuple[pd.Series, pd.DataFrame, Injection]:
    """``energy`` and ``invoices`` with one inconsistency of ``kind``, and where it is:
    ``excess`` is the range of extra invoiced units (share of the month's real output),
    ``shutdown_days`` the length of the shutdown."""
    if kind == "sales_without_energy":
        month = int(rng.integers(2, 13))
        days = production.index[production.index.month == month]
        extra = float(production[days].sum()) * float(rng.uniform(*excess))
        added = [(f"X{k:06d}", day + pd.Timedelta(hours=15), f"C{int(rng.integers(CUSTOMERS)):02d}",
                  float(np.floor(extra / len(days))), round(np.floor(extra / len(days)) * PRICE, 2))
                 for k, day in enumerate(days)]  # fmt: skip
        more = pd.DataFrame(added, columns=invoices.columns)
        return (
            energy,
            pd.concat([invoices, more], ignore_index=True),
            Injection(kind, days[0], days[-1]),
        )
    if kind == "duplicate_invoices":
        picked = invoices.sample(n=int(rng.integers(1, 4)), random_state=rng)
        copies = picked.assign(invoice_id=[f"D{k:06d}" for k in range(len(picked))])
        day = pd.Timestamp(picked["date"].min()).normalize()
        last = pd.Timestamp(picked["date"].max()).normalize()
        return energy, pd.concat([invoices, copies], ignore_index=True), Injection(kind, day, last)
    # production_during_shutdown: a busy week goes quiet on the meter only
    daily = energy.groupby(energy.index.normalize()).sum()
    busy = daily.rolling(shutdown_days).mean().dropna()
    busy = busy[busy > daily.median()]
    if busy.empty:
        raise BenchError("no busy week in the steel data to shut down")
    last = busy.index[int(rng.integers(len(busy)))]
    first = last - pd.Timedelta(days=shutdown_days - 1)
    window = (energy.index >= first) & (energy.index < last + pd.Timedelta(days=1))
    quiet = energy.copy()
    quiet[window] = rng.uniform(2.6, 3.2, int(window.sum()))
    return quiet, invoices, Injection(kind, first, last)


def _covers(flag: Any, injection: Injection) -> bool:
    start, end = pd.Timestamp(flag.start), pd.Timestamp(flag.end)
    return (
        flag.rule in DETECTED_BY[injection.kind]
        and start <= injection.end
        and end >= injection.start
    )


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    from participants.crossverify import RULES, FactoryActivity, cross_verify

    energy = steel_energy()
    trials = QUICK_TRIALS if quick else TRIALS
    days = int(energy.index.normalize().nunique())
    detected = {k: 0 for k in KINDS}
    smaller = {f"sales +{x:.0%}": 0 for x in EXCESSES} | {
        f"shutdown {d} d": 0 for d in SHUTDOWN_DAYS
    }
    false_alarms = {rule: 0 for rule in RULES}
    invoice_days = 0
    seconds = []
    for trial in range(trials):
        rng = np.random.default_rng([SEED, trial])
        production, invoices = declare(energy, rng)
        invoice_days += int(pd.to_datetime(invoices["date"]).dt.normalize().nunique())
        started = time.perf_counter()
        clean = cross_verify(FactoryActivity(energy, production, invoices))
        seconds.append(time.perf_counter() - started)
        for flag in clean:
            false_alarms[flag.rule] += 1
        for kind in KINDS:
            quiet, sold, where = inject(kind, energy, production, invoices, rng)
            flags = cross_verify(FactoryActivity(quiet, production, sold))
            if any(_covers(f, where) for f in flags):
                detected[kind] += 1
        for size in EXCESSES:
            _, sold, where = inject("sales_without_energy", energy, production, invoices, rng,
                                    excess=(size, size))  # fmt: skip
            flags = cross_verify(FactoryActivity(energy, production, sold))
            smaller[f"sales +{size:.0%}"] += any(_covers(f, where) for f in flags)
        for length in SHUTDOWN_DAYS:
            quiet, _, where = inject("production_during_shutdown", energy, production, invoices,
                                     rng, shutdown_days=length)  # fmt: skip
            flags = cross_verify(FactoryActivity(quiet, production, invoices))
            smaller[f"shutdown {length} d"] += any(_covers(f, where) for f in flags)
        if trial % 20 == 0:
            progress(f"cross_verification: trial {trial + 1}/{trials}")
    periods = {rule: (12 if rule in _MONTHLY else days) for rule in RULES}
    periods["duplicate_invoices"] = invoice_days // trials
    return {
        "trials": trials,
        "days": days,
        "readings": len(energy),
        "detected": detected,
        "smaller": smaller,
        "false_alarms": false_alarms,
        "periods_per_year": periods,
        "seconds_per_check": float(np.median(seconds)),
    }


def markdown(result: dict[str, Any]) -> str:
    n = result["trials"]
    rows = [
        [f"`{kind}`", ", ".join(f"`{r}`" for r in sorted(DETECTED_BY[kind])),
         f"{result['detected'][kind]} / {n}", f"{result['detected'][kind] / n:.0%}"]
        for kind in KINDS
    ]  # fmt: skip
    alarms = [
        [f"`{rule}`", f"{count}", f"{count / n:.2f}",
         f"{count / (n * result['periods_per_year'][rule]):.2%}"]
        for rule, count in sorted(result["false_alarms"].items())
    ]  # fmt: skip
    total = sum(result["false_alarms"].values())
    return "\n\n".join(
        [
            f"Detection over {n} trials per kind (each a fresh declaration of the plant's "
            f"{result['days']} days, {result['readings']:,} readings):",
            table(["injected", "detected by", "detected", "rate"], rows),
            "Smaller inconsistencies (same trials): extra invoiced units as a share of the "
            "month's real output, and shorter shutdowns:",
            table(
                ["injected", "detected", "rate"],
                [[k, f"{v} / {n}", f"{v / n:.0%}"] for k, v in result["smaller"].items()],
            ),
            f"False alarms on {n} clean plant-years (no injection), per rule:",
            table(["rule", "flags", "per factory-year", "per period checked"], alarms),
            f"All rules together: {total} false alarms in {n} factory-years "
            f"({total / n:.2f} per factory-year). One check of a plant-year (daily reduction, "
            f"four rules and the model's fit) takes {result['seconds_per_check'] * 1000:.0f} ms. "
            "The MES/ERP false alarms we inspected come from invoices that lag output by up "
            "to four days across a month boundary where output changes sharply (the plant's "
            "December): a month then bills more units than it made. Extra sales below about "
            "30 % of a month's output mostly pass: the checks' thresholds (25 % above the "
            "usual units per kWh, or a 10 % MES/ERP gap, and in both cases 5 robust standard "
            "deviations, which the invoice lag widens) are set for the false-alarm rate "
            "above (`participants.crossverify.CheckSettings`).",
        ]
    )
