"""Synthesis of a park's raw operational series from its firms' drivers.

Machines run in shifts (night 00-08, day 08-16, evening 16-24) on working days; a machine
fills a shift with the firm's monthly load probability and then runs for most of it. The
15-minute main-meter reading is the always-on load plus the running machines' power; water,
gas and workshop climate follow hourly; counters and MES output follow from run hours, cycle
rates and cavities. Reported MES output is inflated for firms that misreport.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from participants.demo.factory_firms import PRE_MONTHS, FirmPopulation
from participants.demo.timeline import LOCAL_TZ, ObservationWindow

__all__ = ["Operations", "simulate_operations"]

_SLOTS_PER_DAY = 96
_SLOTS_PER_SHIFT = 32
_SLOT_S = 900
_DAY_S = 86_400


@dataclass(frozen=True)
class Operations:
    """Sensor, machine and MES tables plus the true good output per firm-month."""

    tables: dict[str, pa.Table]
    true_good_units: np.ndarray  # (F, months)


@dataclass(frozen=True)
class _Runs:
    """Every machine run: machine, day, shift, first slot of the year and length in slots."""

    machine: np.ndarray
    day: np.ndarray
    start: np.ndarray
    slots: np.ndarray
    slots_per_shift: np.ndarray  # (K, D, 3), 0 where the machine stayed idle


@dataclass(frozen=True)
class _Production:
    """Machine-day run hours and cycles, line-day output as made and as the MES reports it."""

    run_hours: np.ndarray  # (K, D)
    cycles: np.ndarray  # (K, D)
    reported: np.ndarray  # (L, D)
    defective: np.ndarray  # (L, D)
    true_good: np.ndarray  # (F, months)


def _firm_column(pop: FirmPopulation, firm_index: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(firm_index.astype(np.int32)), pa.array(pop.firm_ids, pa.string())
    )


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype(np.int64), pa.int64()).cast(pa.timestamp("s", tz=LOCAL_TZ))


def _days(window: ObservationWindow, day_index: np.ndarray) -> pa.Array:
    epoch_day = int(window.start.tz_localize(None).normalize().value // (_DAY_S * 10**9))
    return pa.array((epoch_day + day_index).astype(np.int32), pa.int32()).cast(pa.date32())


def _machine_ids(pop: FirmPopulation) -> tuple[list[str], list[str]]:
    first_line = np.concatenate([[0], np.flatnonzero(np.diff(pop.line_firm)) + 1])
    line_no = np.arange(len(pop.line_firm)) - first_line[pop.line_firm]
    line_ids = [f"L{n + 1}" for n in line_no]
    first_machine = np.concatenate([[0], np.flatnonzero(np.diff(pop.machine_firm)) + 1])
    machine_no = np.arange(len(pop.machine_firm)) - first_machine[pop.machine_firm]
    machine_ids = [
        f"{line_ids[line]}-M{n + 1:02d}"
        for line, n in zip(pop.machine_line, machine_no, strict=True)
    ]
    return machine_ids, line_ids


def _extended_month_of_day(window: ObservationWindow) -> np.ndarray:
    return np.asarray(window.month_of_day + PRE_MONTHS)


def _plan_runs(pop: FirmPopulation, window: ObservationWindow, rng: np.random.Generator) -> _Runs:
    """Which machine runs in which shift, from which slot and for how long."""
    K, D = len(pop.machine_firm), window.n_days
    mf = pop.machine_firm
    ext = _extended_month_of_day(window)
    workday = ~window.closed_day[None, :] & (
        (window.weekday[None, :] != 6) | pop.sunday_work[:, None]
    )
    shift_open = workday[:, :, None] & pop.shifts_on[:, None, :]  # (F, D, 3)
    fill = rng.random((K, D, 3)) < pop.load[mf][:, ext][:, :, None]
    active = shift_open[mf] & fill
    offset = rng.integers(0, 4, size=(K, D, 3))
    frac = pop.run_fraction[mf][:, None, None] * rng.uniform(0.85, 1.1, size=(K, D, 3))
    duration = np.clip(np.rint(frac * _SLOTS_PER_SHIFT), 4, _SLOTS_PER_SHIFT - offset)
    duration = np.where(active, duration, 0).astype(np.int64)
    k_idx, d_idx, s_idx = np.nonzero(active)
    start = d_idx * _SLOTS_PER_DAY + s_idx * _SLOTS_PER_SHIFT + offset[k_idx, d_idx, s_idx]
    return _Runs(
        machine=k_idx,
        day=d_idx,
        start=start,
        slots=duration[k_idx, d_idx, s_idx],
        slots_per_shift=duration,
    )


def _running_kw(pop: FirmPopulation, window: ObservationWindow, runs: _Runs) -> np.ndarray:
    """(F, T) power drawn by running machines in each 15-minute slot."""
    F, T = pop.n_firms, window.n_days * _SLOTS_PER_DAY
    firm = pop.machine_firm[runs.machine]
    power = (
        pop.machine_kw[runs.machine] * pop.intensity[firm, _extended_month_of_day(window)[runs.day]]
    )
    flat = firm * (T + 1) + runs.start
    delta = np.bincount(flat, weights=power, minlength=F * (T + 1)) - np.bincount(
        flat + runs.slots, weights=power, minlength=F * (T + 1)
    )
    return np.asarray(np.cumsum(delta.reshape(F, T + 1)[:, :T], axis=1))


def _utilities_and_climate(
    pop: FirmPopulation,
    window: ObservationWindow,
    kwh: np.ndarray,
    run_kw: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Hourly water and gas (following the load) and workshop temperature and humidity."""
    F, H = pop.n_firms, window.n_days * 24
    prof = pop.profile
    hourly_kwh = kwh.reshape(F, H, 4).sum(axis=2, dtype=np.float64)
    hourly_run = run_kw.reshape(F, H, 4).mean(axis=2)
    water = hourly_kwh * prof.water_m3_per_kwh * rng.lognormal(0, 0.15, size=(F, H))
    gas = hourly_run * prof.gas_m3_per_kwh * rng.lognormal(0, 0.1, size=(F, H))
    hours = np.arange(H)
    doy = window.days.dayofyear.to_numpy()[hours // 24]
    season = -np.cos(2 * np.pi * (doy - 20) / 365.25)  # coldest around 20 January
    daily = np.sin(2 * np.pi * ((hours % 24) - 9) / 24)
    t_mean, t_amp = prof.temperature_c
    firm_kw = np.maximum(np.bincount(pop.machine_firm, weights=pop.machine_kw, minlength=F), 1.0)
    heat = 4.0 * hourly_run / firm_kw[:, None]
    temperature = t_mean + t_amp * season + 3.5 * daily + heat + rng.normal(0, 0.8, size=(F, H))
    humidity = prof.humidity_pct + 9 * season - 4 * daily - 0.6 * heat
    humidity = np.clip(humidity + rng.normal(0, 6, size=(F, H)), 15, 99)
    return {
        "water_m3": np.round(water, 3),
        "gas_m3": np.round(gas, 2),
        "temperature_c": np.round(temperature, 1),
        "humidity_pct": np.round(humidity, 1),
    }


def _produce(
    pop: FirmPopulation, window: ObservationWindow, runs: _Runs, rng: np.random.Generator
) -> _Production:
    """Cycles from run hours, line output from cycles and cavities, defects, MES reports."""
    K, D, M = len(pop.machine_firm), window.n_days, window.months
    ext = _extended_month_of_day(window)
    run_hours = runs.slots_per_shift.sum(axis=2) * 0.25  # (K, D)
    cycles = np.rint(run_hours * pop.machine_cph[:, None] * rng.normal(1, 0.03, size=(K, D)))
    cycles = np.clip(cycles, 0, None).astype(np.int64)
    lf = pop.line_firm
    line_units = np.zeros((len(lf), D), dtype=np.int64)
    np.add.at(line_units, pop.machine_line, cycles * pop.machine_upc[:, None])
    defective = rng.binomial(line_units, pop.defect_rate[lf][:, ext])
    reported = np.rint(line_units * (1 + pop.mes_inflation[lf][:, ext])).astype(np.int64)
    good_line_month = np.zeros((len(lf), M))
    np.add.at(good_line_month.T, window.month_of_day, (line_units - defective).T)
    true_good = np.zeros((pop.n_firms, M))
    np.add.at(true_good, lf, good_line_month)
    return _Production(
        run_hours=run_hours,
        cycles=cycles,
        reported=reported,
        defective=defective.astype(np.int64),
        true_good=true_good,
    )


def _series_tables(
    pop: FirmPopulation, window: ObservationWindow, kwh: np.ndarray, hourly: dict[str, np.ndarray]
) -> dict[str, pa.Table]:
    """Long tables of the 15-minute meter and the hourly utilities and climate."""
    F, T, H = pop.n_firms, kwh.shape[1], window.n_days * 24
    t0 = int(window.start.value // 10**9)
    slot_ts = _timestamps(np.tile(t0 + np.arange(T, dtype=np.int64) * _SLOT_S, F))
    hour_ts = _timestamps(np.tile(t0 + np.arange(H, dtype=np.int64) * 3600, F))
    hourly_firm = _firm_column(pop, np.repeat(np.arange(F), H))

    def float32(name: str) -> pa.Array:
        return pa.array(hourly[name].ravel().astype(np.float32))

    return {
        "electricity_15min": pa.table(
            {
                "firm_id": _firm_column(pop, np.repeat(np.arange(F), T)),
                "meter_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(F * T, dtype=np.int32)), pa.array(["main"])
                ),
                "ts": slot_ts,
                "kwh": pa.array(kwh.ravel(), pa.float32()),
            }
        ),
        "utilities_hourly": pa.table(
            {
                "firm_id": hourly_firm,
                "ts": hour_ts,
                "water_m3": float32("water_m3"),
                "gas_m3": float32("gas_m3"),
            }
        ),
        "climate_hourly": pa.table(
            {
                "firm_id": hourly_firm,
                "ts": hour_ts,
                "temperature_c": float32("temperature_c"),
                "humidity_pct": float32("humidity_pct"),
            }
        ),
    }


def _machine_tables(
    pop: FirmPopulation, window: ObservationWindow, runs: _Runs, made: _Production
) -> dict[str, pa.Table]:
    """The machine register, the run log, daily counters and the MES line-day reports."""
    K, D, L = len(pop.machine_firm), window.n_days, len(pop.line_firm)
    t0 = int(window.start.value // 10**9)
    machine_ids, line_ids = _machine_ids(pop)
    machine_dict = pa.array(machine_ids, pa.string())
    order = np.lexsort((runs.start, runs.machine))
    kd = np.arange(K * D)
    ld = np.arange(L * D)

    def machines(index: np.ndarray) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), machine_dict)

    return {
        "machines": pa.table(
            {
                "firm_id": _firm_column(pop, pop.machine_firm),
                "machine_id": machine_dict,
                "line_id": pa.array([line_ids[x] for x in pop.machine_line], pa.string()),
                "rated_kw": pa.array(np.round(pop.machine_kw / 0.75, 1), pa.float32()),
            }
        ),
        "machine_runs": pa.table(
            {
                "firm_id": _firm_column(pop, pop.machine_firm[runs.machine[order]]),
                "machine_id": machines(runs.machine[order]),
                "run_start": _timestamps(t0 + runs.start[order] * _SLOT_S),
                "run_end": _timestamps(t0 + (runs.start + runs.slots)[order] * _SLOT_S),
            }
        ),
        "machine_counters_daily": pa.table(
            {
                "firm_id": _firm_column(pop, pop.machine_firm[kd // D]),
                "machine_id": machines(kd // D),
                "day": _days(window, kd % D),
                "run_hours": pa.array(made.run_hours.ravel().astype(np.float32)),
                "mould_opens": pa.array(made.cycles.ravel().astype(np.int32)),
            }
        ),
        "mes_daily": pa.table(
            {
                "firm_id": _firm_column(pop, pop.line_firm[ld // D]),
                "line_id": pa.DictionaryArray.from_arrays(
                    pa.array((ld // D).astype(np.int32)), pa.array(line_ids, pa.string())
                ),
                "day": _days(window, ld % D),
                "units_produced": pa.array(made.reported.ravel()),
                "units_defective": pa.array(made.defective.ravel()),
            }
        ),
    }


def simulate_operations(
    pop: FirmPopulation, window: ObservationWindow, rng: np.random.Generator
) -> Operations:
    """Simulate the window's machine runs, meters, climate, counters and MES reports."""
    runs = _plan_runs(pop, window, rng)
    run_kw = _running_kw(pop, window, runs)
    # Main meter: 15-minute kWh at the meter's 0.01 kWh resolution.
    noise = rng.normal(1.0, 0.03, size=run_kw.shape)
    kwh = np.round((run_kw + pop.base_kw[:, None]) * 0.25 * noise, 2).astype(np.float32)
    hourly = _utilities_and_climate(pop, window, kwh, run_kw, rng)
    made = _produce(pop, window, runs, rng)
    tables = _series_tables(pop, window, kwh, hourly)
    tables.update(_machine_tables(pop, window, runs, made))
    return Operations(tables=tables, true_good_units=made.true_good)
