"""Profiles of the demo's factory edge nodes: one industrial park per node.

Each park hosts supplier firms of one industry, so each node sees its own slice of the
indicator space: stamping suppliers of a vehicle maker depend on one customer that pays on
time, garment workshops sell to many customers who pay late, foundries burn gas around the
clock. The parameters are plausible orders of magnitude, not statistics of real parks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

__all__ = ["FACTORY_PROFILES", "FactoryProfile", "factory_profile"]


@dataclass(frozen=True)
class FactoryProfile:
    """How firms in one park look and behave (ranges are min/max or distribution params)."""

    key: str
    industry: str
    division_codes: tuple[str, ...]
    n_firms: int
    machines: tuple[int, int]
    machine_kw: tuple[float, float]
    cycles_per_hour: tuple[float, float]
    units_per_cycle: tuple[int, int]
    shift_probs: tuple[float, float, float]
    sunday_work_prob: float
    load: tuple[float, float]
    demand_volatility: float
    decline_share: float
    seasonal_amplitude: float
    seasonal_peak_month: int
    unit_price_cny: float
    payment_terms_days: tuple[int, ...]
    late_share: tuple[float, float]
    late_days_mean: float
    top_customer: tuple[float, float]
    customers: tuple[int, int]
    top_supplier: tuple[float, float]
    misreport_share: float
    defect: tuple[float, float]
    degradation_share: float
    temperature_c: tuple[float, float]
    humidity_pct: float
    water_m3_per_kwh: float
    gas_m3_per_kwh: float
    orders_per_month: float
    cancel_share: tuple[float, float] = (0.5, 40.0)


FACTORY_PROFILES: Final[tuple[FactoryProfile, ...]] = (
    FactoryProfile(
        key="auto_stamping",
        industry="C3670 auto parts (stamping)",
        division_codes=("220100", "220104", "220106"),
        n_firms=120,
        machines=(6, 12),
        machine_kw=(45.0, 160.0),
        cycles_per_hour=(300.0, 900.0),
        units_per_cycle=(1, 2),
        shift_probs=(0.05, 0.45, 0.50),
        sunday_work_prob=0.5,
        load=(0.78, 0.08),
        demand_volatility=0.06,
        decline_share=0.45,
        seasonal_amplitude=0.08,
        seasonal_peak_month=11,
        unit_price_cny=18.0,
        payment_terms_days=(60, 90),
        late_share=(0.5, 60.0),
        late_days_mean=10.0,
        top_customer=(7.0, 2.0),
        customers=(2, 8),
        top_supplier=(3.0, 4.0),
        misreport_share=0.0,
        defect=(0.006, 0.25),
        degradation_share=0.2,
        temperature_c=(6.0, 18.0),
        humidity_pct=55.0,
        water_m3_per_kwh=0.002,
        gas_m3_per_kwh=0.001,
        orders_per_month=12.0,
    ),
    FactoryProfile(
        key="injection_moulding",
        industry="C2929 plastic parts (injection moulding)",
        division_codes=("330200", "330212", "330281"),
        n_firms=90,
        machines=(5, 11),
        machine_kw=(15.0, 60.0),
        cycles_per_hour=(60.0, 240.0),
        units_per_cycle=(2, 8),
        shift_probs=(0.15, 0.55, 0.30),
        sunday_work_prob=0.3,
        load=(0.55, 0.22),
        demand_volatility=0.12,
        decline_share=0.08,
        seasonal_amplitude=0.10,
        seasonal_peak_month=10,
        unit_price_cny=2.5,
        payment_terms_days=(30, 60, 90),
        late_share=(1.2, 8.0),
        late_days_mean=35.0,
        top_customer=(2.0, 5.0),
        customers=(5, 20),
        top_supplier=(2.5, 3.5),
        misreport_share=0.25,
        defect=(0.01, 0.3),
        degradation_share=0.03,
        temperature_c=(17.0, 11.0),
        humidity_pct=75.0,
        water_m3_per_kwh=0.004,
        gas_m3_per_kwh=0.0,
        orders_per_month=9.0,
    ),
    FactoryProfile(
        key="textile_garment",
        industry="C1810 garments and textiles",
        division_codes=("330600", "330603", "320509"),
        n_firms=70,
        machines=(6, 12),
        machine_kw=(3.0, 12.0),
        cycles_per_hour=(20.0, 60.0),
        units_per_cycle=(1, 1),
        shift_probs=(0.3, 0.6, 0.1),
        sunday_work_prob=0.4,
        load=(0.55, 0.2),
        demand_volatility=0.15,
        decline_share=0.08,
        seasonal_amplitude=0.30,
        seasonal_peak_month=9,
        unit_price_cny=35.0,
        payment_terms_days=(30, 45, 60),
        late_share=(1.0, 3.5),
        late_days_mean=55.0,
        top_customer=(1.5, 6.0),
        customers=(12, 40),
        top_supplier=(2.0, 4.0),
        misreport_share=0.0,
        defect=(0.01, 0.3),
        degradation_share=0.0,
        temperature_c=(17.0, 11.0),
        humidity_pct=80.0,
        water_m3_per_kwh=0.02,
        gas_m3_per_kwh=0.01,
        orders_per_month=10.0,
    ),
    FactoryProfile(
        key="electronics_assembly",
        industry="C3982 electronic components (SMT assembly)",
        division_codes=("441900",),
        n_firms=60,
        machines=(4, 9),
        machine_kw=(20.0, 45.0),
        cycles_per_hour=(600.0, 1800.0),
        units_per_cycle=(1, 4),
        shift_probs=(0.10, 0.50, 0.40),
        sunday_work_prob=0.5,
        load=(0.65, 0.15),
        demand_volatility=0.18,
        decline_share=0.08,
        seasonal_amplitude=0.15,
        seasonal_peak_month=8,
        unit_price_cny=1.2,
        payment_terms_days=(60, 90, 120),
        late_share=(0.5, 40.0),
        late_days_mean=30.0,
        top_customer=(4.0, 3.0),
        customers=(3, 15),
        top_supplier=(4.0, 3.0),
        misreport_share=0.0,
        defect=(0.02, 0.8),
        degradation_share=0.0,
        temperature_c=(23.0, 7.0),
        humidity_pct=78.0,
        water_m3_per_kwh=0.003,
        gas_m3_per_kwh=0.0,
        orders_per_month=14.0,
    ),
    FactoryProfile(
        key="foundry",
        industry="C3391 metal castings (die casting, foundry)",
        division_codes=("440600", "440606", "500112"),
        n_firms=50,
        machines=(3, 7),
        machine_kw=(120.0, 400.0),
        cycles_per_hour=(30.0, 90.0),
        units_per_cycle=(1, 4),
        shift_probs=(0.0, 0.25, 0.75),
        sunday_work_prob=0.8,
        load=(0.6, 0.22),
        demand_volatility=0.14,
        decline_share=0.5,
        seasonal_amplitude=0.10,
        seasonal_peak_month=11,
        unit_price_cny=60.0,
        payment_terms_days=(60, 90),
        late_share=(1.0, 20.0),
        late_days_mean=45.0,
        top_customer=(2.0, 5.0),
        customers=(3, 12),
        top_supplier=(5.0, 3.0),
        misreport_share=0.03,
        defect=(0.01, 0.3),
        degradation_share=0.6,
        temperature_c=(20.0, 9.0),
        humidity_pct=72.0,
        water_m3_per_kwh=0.006,
        gas_m3_per_kwh=0.08,
        orders_per_month=7.0,
    ),
    FactoryProfile(
        key="food_processing",
        industry="C1371 food processing (vegetables, seafood)",
        division_codes=("370200", "370211", "370281"),
        n_firms=40,
        machines=(4, 8),
        machine_kw=(10.0, 55.0),
        cycles_per_hour=(100.0, 400.0),
        units_per_cycle=(1, 6),
        shift_probs=(0.35, 0.55, 0.10),
        sunday_work_prob=0.5,
        load=(0.6, 0.2),
        demand_volatility=0.10,
        decline_share=0.05,
        seasonal_amplitude=0.35,
        seasonal_peak_month=10,
        unit_price_cny=8.0,
        payment_terms_days=(15, 30, 45),
        late_share=(0.5, 40.0),
        late_days_mean=20.0,
        top_customer=(2.0, 5.0),
        customers=(4, 20),
        top_supplier=(2.0, 2.0),
        misreport_share=0.02,
        defect=(0.008, 0.3),
        degradation_share=0.03,
        temperature_c=(13.0, 12.0),
        humidity_pct=70.0,
        water_m3_per_kwh=0.05,
        gas_m3_per_kwh=0.03,
        orders_per_month=11.0,
        cancel_share=(1.5, 5.0),
    ),
)


def factory_profile(index: int, *, n_firms: int | None = None) -> FactoryProfile:
    """Profile of the ``index``-th factory node (0-based); beyond six the parks repeat.

    ``n_firms`` overrides the park's default number of hosted firms.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    profile = FACTORY_PROFILES[index % len(FACTORY_PROFILES)]
    if n_firms is not None:
        if n_firms < 1:
            raise ValueError(f"n_firms must be >= 1, got {n_firms}")
        profile = replace(profile, n_firms=n_firms)
    return profile
