"""The firms a factory node hosts: static equipment and commercial terms, monthly drivers.

Drivers are the hidden causes behind the raw series (how many machine-shifts a firm fills,
how its customers pay, whether it inflates reported output, ...). They are sampled over an
*extended* range of months: ``PRE_MONTHS`` before the observation window (ERP history that
receivables and order trends need) and one after it (orders placed for next month).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from participants.demo.profiles import FactoryProfile
from participants.demo.timeline import ObservationWindow
from participants.demo.uscc import random_usccs

__all__ = ["PRE_MONTHS", "FirmPopulation", "sample_firms"]

PRE_MONTHS: Final = 6
"""Months of ERP history kept before the observation window."""


@dataclass(frozen=True)
class FirmPopulation:
    """Per-firm (``F``), per-machine (``K``), per-line (``L``) and per-month attributes.

    Monthly arrays span the extended months ``E = PRE_MONTHS + months + 1`` unless noted.
    """

    profile: FactoryProfile
    firm_ids: list[str]
    machine_firm: np.ndarray  # (K,) firm index
    machine_line: np.ndarray  # (K,) line index
    line_firm: np.ndarray  # (L,) firm index
    machine_kw: np.ndarray  # (K,) power drawn while running
    machine_cph: np.ndarray  # (K,) cycles (mould opens, strokes) per run hour
    machine_upc: np.ndarray  # (K,) units per cycle (cavities)
    base_kw: np.ndarray  # (F,) always-on load
    shifts_on: np.ndarray  # (F, 3) night 00-08, day 08-16, evening 16-24
    sunday_work: np.ndarray  # (F,)
    run_fraction: np.ndarray  # (F,) share of an active shift a machine runs
    load: np.ndarray  # (F, E) share of machine-shifts filled
    intensity: np.ndarray  # (F, E) energy per run hour, relative to rated
    defect_rate: np.ndarray  # (F, E)
    mes_inflation: np.ndarray  # (F, E) over-reporting of MES output
    erp_inflation: np.ndarray  # (F, E) fictitious ERP orders, share of real ones
    late_share: np.ndarray  # (F, E) share of invoices paid late
    late_days: np.ndarray  # (F,) mean delay of a late payment
    terms_days: np.ndarray  # (F,)
    unit_price: np.ndarray  # (F,)
    orders_per_month: np.ndarray  # (F,)
    cancel_share: np.ndarray  # (F,) share of orders cancelled after production
    customer_cum: np.ndarray  # (F, C) cumulative customer weights (padded with 1)
    supplier_cum: np.ndarray  # (F, S) cumulative supplier weights (padded with 1)

    @property
    def n_firms(self) -> int:
        """Number of firms."""
        return len(self.firm_ids)


def _cumulative_weights(
    rng: np.random.Generator, top: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Rows of cumulative weights: the first partner takes ``top``, the rest share the remainder."""
    width = int(counts.max())
    rest = rng.gamma(1.0, size=(len(top), width - 1))
    rest[np.arange(width - 1)[None, :] >= (counts[:, None] - 1)] = 0.0
    rest_sum = rest.sum(axis=1, keepdims=True)
    rest = np.divide(rest, rest_sum, out=np.zeros_like(rest), where=rest_sum > 0)
    top = np.where(counts == 1, 1.0, top)
    weights = np.concatenate([top[:, None], rest * (1.0 - top[:, None])], axis=1)
    return np.asarray(np.minimum(np.cumsum(weights, axis=1), 1.0))


def _seasonality(
    profile: FactoryProfile, rng: np.random.Generator, months_of_year: np.ndarray
) -> np.ndarray:
    phase = rng.normal(0.0, 0.8, size=(1,))
    angle = 2 * np.pi * (months_of_year - profile.seasonal_peak_month - phase) / 12.0
    return 1.0 + profile.seasonal_amplitude * np.cos(angle)


def _equipment(profile: FactoryProfile, rng: np.random.Generator, F: int) -> dict[str, np.ndarray]:
    """Machines (grouped four to a line), their power, cycle rate and cavities; base load."""
    per_firm = rng.integers(profile.machines[0], profile.machines[1] + 1, size=F)
    machine_firm = np.repeat(np.arange(F), per_firm)
    K = len(machine_firm)
    first = np.concatenate([[0], np.cumsum(per_firm)[:-1]])
    pos = np.arange(K) - first[machine_firm]
    lines_per_firm = (per_firm + 3) // 4
    line_first = np.concatenate([[0], np.cumsum(lines_per_firm)[:-1]])
    lo, hi = np.log(profile.machine_kw)
    machine_kw = np.exp(rng.uniform(lo, hi, size=K)) * rng.uniform(0.6, 0.85, size=K)
    lo, hi = np.log(profile.cycles_per_hour)
    machine_cph = np.exp(rng.uniform(lo, hi, size=K))
    machine_upc = rng.integers(profile.units_per_cycle[0], profile.units_per_cycle[1] + 1, size=K)
    firm_kw = np.bincount(machine_firm, weights=machine_kw, minlength=F)
    return {
        "machine_firm": machine_firm,
        "machine_line": line_first[machine_firm] + pos % lines_per_firm[machine_firm],
        "line_firm": np.repeat(np.arange(F), lines_per_firm),
        "machine_kw": machine_kw,
        "machine_cph": machine_cph,
        "machine_upc": machine_upc,
        "base_kw": firm_kw * rng.uniform(0.06, 0.18, size=F),
    }


def _shifts(profile: FactoryProfile, rng: np.random.Generator, F: int) -> dict[str, np.ndarray]:
    """Shift pattern (1 = day, 2 = day + evening, 3 = round the clock) and Sunday work."""
    n_shifts = rng.choice(3, size=F, p=profile.shift_probs) + 1
    return {
        "shifts_on": np.stack([n_shifts >= 3, np.ones(F, dtype=bool), n_shifts >= 2], axis=1),
        "sunday_work": (rng.random(F) < profile.sunday_work_prob) | (n_shifts == 3),
        "run_fraction": rng.uniform(0.72, 0.95, size=F),
    }


def _load(
    profile: FactoryProfile,
    rng: np.random.Generator,
    declining: np.ndarray,
    rel: np.ndarray,
    moy: np.ndarray,
) -> np.ndarray:
    """Share of machine-shifts filled: firm level x AR(1) demand x trend x season."""
    F, E = len(declining), len(rel)
    slope = np.where(declining, -rng.uniform(0.02, 0.07, size=F), rng.normal(0.004, 0.008, size=F))
    shocks = rng.normal(0.0, profile.demand_volatility, size=(F, E))
    ar = np.zeros((F, E))
    for e in range(E):
        ar[:, e] = (0.6 * ar[:, e - 1] if e else 0.0) + shocks[:, e]
    demand = np.exp(ar + slope[:, None] * rel[None, :]) * _seasonality(profile, rng, moy)
    firm_load = np.clip(rng.normal(profile.load[0], profile.load[1], size=F), 0.12, 0.98)
    return np.asarray(np.clip(firm_load[:, None] * demand, 0.03, 1.0))


def _intensity(
    profile: FactoryProfile, rng: np.random.Generator, F: int, rel: np.ndarray, months: int
) -> np.ndarray:
    """Energy per run hour relative to rated; some machines degrade (worn moulds, leaks)."""
    degrading = rng.random(F) < profile.degradation_share
    onset = rng.integers(-PRE_MONTHS, months, size=F)
    growth = np.where(degrading, rng.uniform(0.03, 0.08, size=F), 0.0)
    months_since = np.clip(rel[None, :] - onset[:, None], 0, None)
    noise = rng.normal(1.0, 0.02, size=(F, len(rel)))
    return np.asarray((1 + growth[:, None]) ** months_since * noise)


def _defects(
    profile: FactoryProfile, rng: np.random.Generator, distress: np.ndarray, E: int
) -> np.ndarray:
    base = profile.defect[0] * np.exp(rng.normal(0, profile.defect[1], size=len(distress)))
    noise = np.exp(rng.normal(0, 0.15, size=(len(distress), E)) + 0.08 * distress[:, None])
    return np.asarray(np.clip(base[:, None] * noise, 0.0005, 0.4))


def _reporting(
    profile: FactoryProfile,
    rng: np.random.Generator,
    distress: np.ndarray,
    rel: np.ndarray,
    months: int,
) -> dict[str, np.ndarray]:
    """Inflated MES output or fictitious ERP orders, from an onset month on."""
    F = len(distress)
    misreports = rng.random(F) < profile.misreport_share * (1 + 0.5 * np.tanh(distress))
    kind_mes = rng.random(F) < 0.5
    size = rng.uniform(0.08, 0.4, size=F)
    start = rng.integers(-PRE_MONTHS, months - 2, size=F)
    active = misreports[:, None] & (rel[None, :] >= start[:, None])
    return {
        "mes_inflation": np.where(active & kind_mes[:, None], size[:, None], 0.0),
        "erp_inflation": np.where(active & ~kind_mes[:, None], size[:, None], 0.0),
    }


def _commercial(
    profile: FactoryProfile, rng: np.random.Generator, declining: np.ndarray, rel: np.ndarray
) -> dict[str, np.ndarray]:
    """Late payment by customers (rising for declining firms), terms, prices, order counts."""
    F, E = len(declining), len(rel)
    late = rng.beta(*profile.late_share, size=F)
    late_trend = np.where(declining, rng.uniform(0.0, 0.03, size=F), 0.0)
    late_share = late[:, None] * np.exp(rng.normal(0, 0.25, size=(F, E)))
    late_share += late_trend[:, None] * np.clip(rel, 0, None)[None, :]
    return {
        "late_share": np.clip(late_share, 0.0, 0.95),
        "late_days": profile.late_days_mean * np.exp(rng.normal(0, 0.4, size=F)),
        "terms_days": rng.choice(np.asarray(profile.payment_terms_days), size=F),
        "unit_price": profile.unit_price_cny * np.exp(rng.normal(0, 0.3, size=F)),
        "orders_per_month": profile.orders_per_month * np.exp(rng.normal(0, 0.3, size=F)),
    }


def _partners(profile: FactoryProfile, rng: np.random.Generator, F: int) -> dict[str, np.ndarray]:
    """Customer and supplier concentration, and how often orders are cancelled."""
    n_customers = rng.integers(profile.customers[0], profile.customers[1] + 1, size=F)
    top_customer = rng.beta(*profile.top_customer, size=F)
    n_suppliers = rng.integers(3, 16, size=F)
    top_supplier = rng.beta(*profile.top_supplier, size=F)
    cancel_share = rng.beta(*profile.cancel_share, size=F)
    return {
        "cancel_share": cancel_share,
        "customer_cum": _cumulative_weights(rng, top_customer, n_customers),
        "supplier_cum": _cumulative_weights(rng, top_supplier, n_suppliers),
    }


def sample_firms(
    profile: FactoryProfile,
    window: ObservationWindow,
    rng: np.random.Generator,
    *,
    n_firms: int,
    exclude_ids: frozenset[str] = frozenset(),
) -> FirmPopulation:
    """Sample ``n_firms`` firms of ``profile`` with their drivers over the extended months."""
    F = n_firms
    E = PRE_MONTHS + window.months + 1
    rel = np.arange(E) - PRE_MONTHS  # month index relative to the window start
    moy = (window.start.month - 1 + rel) % 12 + 1
    firm_ids = random_usccs(rng, F, division_codes=profile.division_codes, exclude=exclude_ids)
    equipment = _equipment(profile, rng, F)
    shifts = _shifts(profile, rng, F)
    # A shared distress factor nudges several drivers of the same firm.
    distress = rng.normal(size=F)
    declining = rng.random(F) < profile.decline_share * (1 + 0.5 * np.tanh(distress))
    load = _load(profile, rng, declining, rel, moy)
    intensity = _intensity(profile, rng, F, rel, window.months)
    defect_rate = _defects(profile, rng, distress, E)
    reporting = _reporting(profile, rng, distress, rel, window.months)
    commercial = _commercial(profile, rng, declining, rel)
    return FirmPopulation(
        profile=profile,
        firm_ids=firm_ids,
        load=load,
        intensity=intensity,
        defect_rate=defect_rate,
        **equipment,
        **shifts,
        **reporting,
        **commercial,
        **_partners(profile, rng, F),
    )
