"""Farmers for the farmer-credit model: bank accounts and loans, agricultural registry.

The hidden default risk couples both parties: leverage is the bank's loan balance against
the farm income that only the agricultural platform's planted area, crop and livestock
reveal; renting land for cash crops outside a cooperative is risky; a deep deposit history
and a clean repayment record are protective.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from participants.demo.columns import CROPS
from participants.demo.vertical import VerticalSplit, split_views

__all__ = ["FARMER_INTERCEPT", "farmer_ids", "simulate_farmers"]

FARMER_INTERCEPT: Final = -2.9
_CROP_P: Final = {
    "corn": 0.2,
    "fruit": 0.1,
    "none": 0.1,
    "rice": 0.25,
    "tea": 0.05,
    "vegetables": 0.15,
    "wheat": 0.15,
}
_REVENUE_PER_MU: Final = {
    "corn": 1100.0,
    "fruit": 5500.0,
    "none": 0.0,
    "rice": 1300.0,
    "tea": 6500.0,
    "vegetables": 4500.0,
    "wheat": 1000.0,
}
_CASH_CROPS: Final = frozenset({"fruit", "tea", "vegetables"})


def farmer_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct pseudonymous farmer ids: ``F`` and nine digits."""
    numbers = rng.choice(900_000_000, size=count, replace=False) + 100_000_000
    return [f"F{n}" for n in numbers]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(x, 0.0))


def simulate_farmers(
    rng: np.random.Generator,
    *,
    n_farmers: int,
    gov_coverage: float = 0.9,
    gov_only_share: float = 0.15,
) -> VerticalSplit:
    """``n_farmers`` bank customers (with labels) and the agricultural platform's view."""
    if n_farmers < 1:
        raise ValueError(f"n_farmers must be >= 1, got {n_farmers}")
    n = n_farmers + round(gov_only_share * n_farmers)
    crops = np.array(CROPS)
    crop = rng.choice(crops, size=n, p=[_CROP_P[c] for c in CROPS])
    cash = np.isin(crop, list(_CASH_CROPS))
    own_area = np.where(crop == "none", rng.uniform(0, 3, n), rng.lognormal(np.log(8), 0.7, n))
    rents = (crop != "none") & (rng.random(n) < 0.2 + 0.2 * cash)
    contracts = np.where(rents, rng.integers(1, 5, n), 0)
    transfer_area = np.where(rents, own_area * rng.uniform(0.5, 3.0, n), 0.0)
    area = own_area + transfer_area
    has_livestock = rng.random(n) < np.where(crop == "none", 0.95, 0.25)
    livestock = np.where(has_livestock, np.rint(rng.lognormal(np.log(20), 1.0, n)), 0)
    coop = rng.random(n) < 0.25 + 0.25 * cash
    margin = np.where(cash, 0.3, 0.38)
    revenue_per_mu = np.array([_REVENUE_PER_MU[c] for c in crop])
    farm_income = area * revenue_per_mu * margin + livestock * 350.0
    off_farm = rng.lognormal(np.log(18_000), 0.7, n)
    subsidies = area * np.where(cash, 90.0, 140.0) + livestock * 20.0
    subsidies = np.where(rng.random(n) < 0.08, 0.0, subsidies * rng.lognormal(0, 0.1, n))

    certificate = rng.random(n) < 0.8
    savings = (0.3 * farm_income + off_farm) * rng.uniform(0.05, 0.4, n)
    deposit = savings * rng.lognormal(0, 1.0, n)
    leverage = rng.lognormal(np.log(0.9), 0.75, n)
    has_loan = rng.random(n) < 0.5 + 0.3 * rents
    debt = np.where(has_loan, leverage * (farm_income + 0.4 * off_farm), 0.0)
    habit = rng.normal(size=n)
    late = rng.poisson(0.15 + 0.3 * _relu(leverage - 1.3) + 0.6 * _relu(habit))
    inquiries = rng.poisson(0.4 + 0.4 * _relu(leverage - 1.0) + 0.3 * _relu(-habit))

    capacity = farm_income + 0.3 * off_farm
    logit = (
        FARMER_INTERCEPT
        + 1.6 * _relu(np.log((debt + 1.0) / capacity) + 0.3)
        + 1.5 * (cash & rents & ~coop)
        + 0.35 * contracts
        - 0.8 * certificate
        + 1.2 * ((livestock > 60) & (area < 5))
        - 0.6 * coop
        + 0.2 * late
        + 0.15 * inquiries
        - 0.25 * np.log1p(deposit / 20_000)
        + rng.normal(0, 0.5, n)
    )
    label = rng.random(n) < 1 / (1 + np.exp(-logit))

    bank = pd.DataFrame(
        {
            "deposit_balance_cny": np.round(deposit, 2),
            "avg_balance_6m_cny": np.round(deposit * rng.lognormal(0, 0.3, n), 2),
            "txn_count_monthly": rng.poisson(rng.lognormal(np.log(8), 0.5, n)),
            "account_age_months": rng.integers(6, 361, n),
            "existing_loans": np.where(has_loan, rng.integers(1, 4, n), 0),
            "existing_loan_balance_cny": np.round(debt, 2),
            "late_repayments_24m": late,
            "max_days_late_24m": np.where(
                late > 0, 1 + np.rint(rng.exponential(12 + 8 * late)), 0
            ).astype(np.int64),
            "credit_inquiries_6m": inquiries,
        }
    )
    gov = pd.DataFrame(
        {
            "planted_area_mu": np.round(area, 1),
            "main_crop": crop,
            "livestock_head": livestock.astype(np.int64),
            "land_transfer_contracts": contracts,
            "land_transfer_area_mu": np.round(transfer_area, 1),
            "rural_housing_m2": np.round(rng.lognormal(np.log(140), 0.35, n), 1),
            "housing_certificate": certificate.astype(np.int64),
            "subsidies_12m_cny": np.round(subsidies, 2),
            "cooperative_member": coop.astype(np.int64),
        }
    )
    return split_views(
        farmer_ids(rng, n),
        bank,
        gov,
        label,
        rng,
        n_bank=n_farmers,
        id_column="farmer_id",
        gov_coverage=gov_coverage,
    )
