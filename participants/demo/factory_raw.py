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
    kwh_month: np.ndarray  # (F, months) metered electricity


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


def simulate_operations(
    pop: FirmPopulation, window: ObservationWindow, rng: np.random.Generator
) -> Operations:
    """Simulate one year (the window) of machine runs, meters, climate, counters and MES."""
    F, K, D, M = pop.n_firms, len(pop.machine_firm), window.n_days, window.months
    T = D * _SLOTS_PER_DAY
    month_of_day = window.month_of_day
    ext = month_of_day + PRE_MONTHS  # extended-month index of each day
    mf = pop.machine_firm

    # Which machine runs in which shift, when it starts and for how long.
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
    dur = duration[k_idx, d_idx, s_idx]
    firm_of_run = mf[k_idx]
    power = pop.machine_kw[k_idx] * pop.intensity[firm_of_run, ext[d_idx]]
    flat = firm_of_run * (T + 1)
    delta = np.bincount(flat + start, weights=power, minlength=F * (T + 1)) - np.bincount(
        flat + start + dur, weights=power, minlength=F * (T + 1)
    )
    run_kw = np.cumsum(delta.reshape(F, T + 1)[:, :T], axis=1)

    # Main meter, 15-minute kWh (meter resolution 0.01 kWh).
    noise = rng.normal(1.0, 0.03, size=(F, T))
    kwh = np.round((run_kw + pop.base_kw[:, None]) * 0.25 * noise, 2).astype(np.float32)

    # Hourly water, gas and workshop climate.
    hourly_kwh = kwh.reshape(F, D * 24, 4).sum(axis=2, dtype=np.float64)
    hourly_run = run_kw.reshape(F, D * 24, 4).mean(axis=2)
    prof = pop.profile
    H = D * 24
    water = hourly_kwh * prof.water_m3_per_kwh * rng.lognormal(0, 0.15, size=(F, H))
    gas = hourly_run * prof.gas_m3_per_kwh * rng.lognormal(0, 0.1, size=(F, H))
    hours = np.arange(H)
    doy = window.days.dayofyear.to_numpy()[hours // 24]
    season = -np.cos(2 * np.pi * (doy - 20) / 365.25)  # coldest around 20 January
    daily = np.sin(2 * np.pi * ((hours % 24) - 9) / 24)
    t_mean, t_amp = prof.temperature_c
    firm_kw = np.maximum(np.bincount(mf, weights=pop.machine_kw, minlength=F), 1.0)
    heat = 4.0 * hourly_run / firm_kw[:, None]
    temperature = t_mean + t_amp * season + 3.5 * daily + heat + rng.normal(0, 0.8, size=(F, H))
    humidity = np.clip(
        prof.humidity_pct + 9 * season - 4 * daily - 0.6 * heat + rng.normal(0, 6, size=(F, H)),
        15,
        99,
    )

    # Counters and MES.
    run_hours = duration.sum(axis=2) * 0.25  # (K, D)
    cycles = np.rint(run_hours * pop.machine_cph[:, None] * rng.normal(1, 0.03, size=(K, D)))
    cycles = np.clip(cycles, 0, None).astype(np.int64)
    units = cycles * pop.machine_upc[:, None]
    L = len(pop.line_firm)
    line_units = np.zeros((L, D), dtype=np.int64)
    np.add.at(line_units, pop.machine_line, units)
    lf = pop.line_firm
    defective = rng.binomial(line_units, pop.defect_rate[lf][:, ext])
    reported = np.rint(line_units * (1 + pop.mes_inflation[lf][:, ext])).astype(np.int64)

    good_line_month = np.zeros((L, M))
    np.add.at(good_line_month.T, month_of_day, (line_units - defective).T)
    true_good = np.zeros((F, M))
    np.add.at(true_good, lf, good_line_month)
    kwh_month = np.zeros((F, M))
    np.add.at(kwh_month.T, month_of_day, kwh.reshape(F, D, 96).sum(axis=2, dtype=np.float64).T)

    t0 = int(window.start.value // 10**9)
    machine_ids, line_ids = _machine_ids(pop)
    machine_dict = pa.array(machine_ids, pa.string())
    line_dict = pa.array(line_ids, pa.string())
    slot_s = t0 + np.arange(T, dtype=np.int64) * _SLOT_S
    hour_s = t0 + np.arange(H, dtype=np.int64) * 3600
    run_order = np.lexsort((start, k_idx))
    kd = np.arange(K * D)
    ld = np.arange(L * D)

    tables = {
        "machines": pa.table(
            {
                "firm_id": _firm_column(pop, mf),
                "machine_id": machine_dict,
                "line_id": pa.array([line_ids[x] for x in pop.machine_line], pa.string()),
                "rated_kw": pa.array(np.round(pop.machine_kw / 0.75, 1), pa.float32()),
            }
        ),
        "electricity_15min": pa.table(
            {
                "firm_id": _firm_column(pop, np.repeat(np.arange(F), T)),
                "meter_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(F * T, dtype=np.int32)), pa.array(["main"])
                ),
                "ts": _timestamps(np.tile(slot_s, F)),
                "kwh": pa.array(kwh.ravel(), pa.float32()),
            }
        ),
        "utilities_hourly": pa.table(
            {
                "firm_id": _firm_column(pop, np.repeat(np.arange(F), H)),
                "ts": _timestamps(np.tile(hour_s, F)),
                "water_m3": pa.array(np.round(water, 3).ravel().astype(np.float32)),
                "gas_m3": pa.array(np.round(gas, 2).ravel().astype(np.float32)),
            }
        ),
        "climate_hourly": pa.table(
            {
                "firm_id": _firm_column(pop, np.repeat(np.arange(F), H)),
                "ts": _timestamps(np.tile(hour_s, F)),
                "temperature_c": pa.array(np.round(temperature, 1).ravel().astype(np.float32)),
                "humidity_pct": pa.array(np.round(humidity, 1).ravel().astype(np.float32)),
            }
        ),
        "machine_runs": pa.table(
            {
                "firm_id": _firm_column(pop, firm_of_run[run_order]),
                "machine_id": pa.DictionaryArray.from_arrays(
                    pa.array(k_idx[run_order].astype(np.int32)), machine_dict
                ),
                "run_start": _timestamps(t0 + start[run_order] * _SLOT_S),
                "run_end": _timestamps(t0 + (start + dur)[run_order] * _SLOT_S),
            }
        ),
        "machine_counters_daily": pa.table(
            {
                "firm_id": _firm_column(pop, mf[kd // D]),
                "machine_id": pa.DictionaryArray.from_arrays(
                    pa.array((kd // D).astype(np.int32)), machine_dict
                ),
                "day": _days(window, kd % D),
                "run_hours": pa.array(run_hours.ravel().astype(np.float32)),
                "mould_opens": pa.array(cycles.ravel().astype(np.int32)),
            }
        ),
        "mes_daily": pa.table(
            {
                "firm_id": _firm_column(pop, lf[ld // D]),
                "line_id": pa.DictionaryArray.from_arrays(
                    pa.array((ld // D).astype(np.int32)), line_dict
                ),
                "day": _days(window, ld % D),
                "units_produced": pa.array(reported.ravel()),
                "units_defective": pa.array(defective.ravel().astype(np.int64)),
            }
        ),
    }
    return Operations(tables=tables, true_good_units=true_good, kwh_month=kwh_month)
