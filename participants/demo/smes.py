"""Small firms for the SME-risk model: bank settlement flows, government registries.

The hidden risk couples both parties: bank credit against the invoiced sales only the tax
bureau sees, settlement inflows that exceed invoiced sales (round-tripping), revenue declared
above the invoices (交叉验真), plus tax grade, lawsuits, overdue history and cash burn.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from participants.demo.columns import INDUSTRIES
from participants.demo.uscc import random_usccs
from participants.demo.vertical import VerticalSplit, split_views

__all__ = ["SME_INTERCEPT", "simulate_smes"]

SME_INTERCEPT: Final = -2.9
_INDUSTRY_P: Final = {"A": 0.05, "C": 0.3, "F": 0.08, "G": 0.3, "H": 0.1, "I": 0.07, "L": 0.1}
_REVENUE_SCALE: Final = {"A": 0.6, "C": 1.5, "F": 2.0, "G": 1.2, "H": 0.5, "I": 0.8, "L": 0.7}
_REVENUE_PER_HEAD: Final = {
    "A": 3e5,
    "C": 3.5e5,
    "F": 5e5,
    "G": 8e5,
    "H": 2e5,
    "I": 4e5,
    "L": 5e5,
}
_INDUSTRY_RISK: Final = {"A": 0.2, "C": 0.0, "F": 0.3, "G": 0.1, "H": 0.4, "I": 0.0, "L": 0.1}
_DIVISIONS: Final = ("320500", "320505", "320583", "330100", "330106", "350100", "350102")


def _relu(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(x, 0.0))


def simulate_smes(
    rng: np.random.Generator,
    *,
    n_smes: int,
    gov_coverage: float = 0.9,
    gov_only_share: float = 0.15,
    exclude_ids: frozenset[str] = frozenset(),
) -> VerticalSplit:
    """``n_smes`` bank clients (with labels) and the government platform's view."""
    if n_smes < 1:
        raise ValueError(f"n_smes must be >= 1, got {n_smes}")
    n = n_smes + round(gov_only_share * n_smes)
    codes = np.array(INDUSTRIES)
    industry = rng.choice(codes, size=n, p=[_INDUSTRY_P[c] for c in INDUSTRIES])
    age = np.clip(rng.lognormal(np.log(6), 0.8, n), 0.3, 40)
    scale = np.array([_REVENUE_SCALE[c] for c in industry])
    revenue = rng.lognormal(np.log(4e6), 1.0, n) * scale
    capital = np.round(revenue * rng.lognormal(np.log(0.3), 0.8, n), -4)
    per_head = np.array([_REVENUE_PER_HEAD[c] for c in industry])
    headcount = np.rint(revenue / per_head * rng.lognormal(0, 0.3, n)).astype(np.int64)
    headcount = np.where(rng.random(n) < 0.05, 0, np.maximum(headcount, 1))
    key = rng.random(n) < 1 / (1 + np.exp(-(np.log(revenue / 6e7) * 1.5)))
    compliance = rng.normal(size=n)
    grade = np.select(
        [age < 1.0, compliance > 1.0, compliance > -0.5, compliance > -1.5],
        ["M", "A", "B", "C"],
        default="D",
    )
    invoices = revenue * rng.uniform(0.8, 1.0, n)
    manipulation = rng.random(n)
    declared = revenue * np.select(
        [manipulation < 0.08, manipulation < 0.13],
        [rng.uniform(1.3, 2.0, n), rng.uniform(0.4, 0.7, n)],
        default=rng.normal(1.0, 0.03, n),
    )
    distress = rng.normal(size=n)
    court = rng.poisson(0.1 + 0.4 * _relu(-compliance) + 0.3 * _relu(distress))
    penalties = rng.poisson(0.1 + 0.3 * _relu(-compliance))

    share_at_bank = rng.uniform(0.3, 1.0, n)
    round_trip = np.where(rng.random(n) < 0.07, rng.uniform(1.5, 3.0, n), 1.0)
    inflow = revenue / 12 * share_at_bank * round_trip * rng.lognormal(0, 0.1, n)
    outflow = inflow * (1 + rng.normal(0, 0.03, n) + 0.05 * distress)
    volatility = rng.lognormal(np.log(0.5), 0.4, n) * (1 + 0.2 * _relu(distress))
    leverage = rng.lognormal(np.log(0.25), 0.8, n)
    has_credit = rng.random(n) < 0.7
    credit = np.round(np.where(has_credit, leverage * revenue, 0.0), -3)
    overdue = rng.poisson(0.15 + 0.8 * _relu(leverage - 0.5) + 0.3 * _relu(distress))

    logit = (
        SME_INTERCEPT
        + 1.8 * _relu(np.log((credit + 1.0) / invoices) + 0.9)
        + 1.5 * _relu(np.log(declared / invoices) - 0.15)
        + 1.2 * _relu(np.log(12 * inflow / invoices) - 0.2)
        + 0.9 * np.isin(grade, ["C", "D"])
        + 0.35 * court
        + 0.2 * penalties
        + 0.45 * overdue
        + 6.0 * _relu(outflow / inflow - 1.03)
        + 0.5 * _relu(volatility - 0.8)
        - 0.3 * np.log1p(age)
        - 0.6 * key
        + 0.5 * (headcount == 0)
        + np.array([_INDUSTRY_RISK[c] for c in industry])
        + rng.normal(0, 0.5, n)
    )
    label = rng.random(n) < 1 / (1 + np.exp(-logit))

    bank = pd.DataFrame(
        {
            "monthly_inflow_cny": np.round(inflow, 2),
            "monthly_outflow_cny": np.round(outflow, 2),
            "counterparties_12m": rng.poisson(4 + 6 * np.log10(revenue / 1e5).clip(0.1)),
            "balance_volatility": np.round(volatility, 4),
            "avg_balance_cny": np.round(inflow * rng.uniform(0.2, 1.5, n), 2),
            "existing_credit_cny": credit,
            "overdue_count_24m": overdue,
            "max_overdue_days_24m": np.where(
                overdue > 0, 1 + np.rint(rng.exponential(15 + 10 * overdue)), 0
            ).astype(np.int64),
        }
    )
    gov = pd.DataFrame(
        {
            "registration_age_years": np.round(age, 2),
            "registered_capital_cny": capital,
            "industry": industry,
            "key_enterprise": key.astype(np.int64),
            "tax_credit_grade": grade,
            "vat_invoices_12m_cny": np.round(invoices, 2),
            "declared_revenue_12m_cny": np.round(declared, 2),
            "social_insurance_headcount": headcount,
            "court_cases_3y": court,
            "admin_penalties_3y": penalties,
        }
    )
    ids = random_usccs(rng, n, division_codes=_DIVISIONS, exclude=exclude_ids)
    return split_views(
        ids,
        bank,
        gov,
        label,
        rng,
        n_bank=n_smes,
        id_column="firm_id",
        gov_coverage=gov_coverage,
    )
