"""Hidden ground truth of the IoT (factory) risk model.

A firm's monthly hazard of defaulting or going 90+ days past due on its bank loan depends,
non-linearly and with interactions, on indicators that vary in *different* parks: customer
payment stress matters most where the firm depends on one customer, a collapse in orders or
utilisation, reporting inconsistencies (交叉验真), energy drifting away from output, poor
quality. Each park shows only some of these, so a model trained in one park misjudges firms
of another. Nothing here is written into any node's features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

__all__ = ["HAZARD_INTERCEPT", "iot_risk_score", "monthly_hazard"]

HAZARD_INTERCEPT: Final = -5.6
"""Log-odds of the monthly hazard for a firm with no risk signal at all."""


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def iot_risk_score(ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """Risk score (log-odds shift of the monthly hazard) from a month's indicators."""
    overdue = ind["receivable_overdue_ratio"]
    concentration = ind["top_customer_share"]
    return (
        3.5 * overdue * (0.4 + 1.6 * concentration)
        + 2.0 * overdue * _relu(ind["receivable_overdue_days"] / 90.0 - 0.3)
        + 6.0 * _relu(concentration - 0.6)
        + 1.5 * _relu(-ind["order_growth"] - 0.1)
        + 2.0 * _relu(-ind["run_hours_trend"] - 0.15)
        + 3.0 * _relu(0.15 - ind["utilisation"])
        + 10.0 * ind["mes_erp_mismatch"]
        + 4.0 * _relu(ind["energy_per_unit_drift"] - 0.1)
        + 40.0 * _relu(ind["defect_rate"] - 0.02)
        + 3.0 * _relu(0.9 - ind["ship_to_order_ratio"])
    )


def monthly_hazard(score: np.ndarray) -> np.ndarray:
    """Monthly probability of the default event given the previous month's risk score."""
    return 1.0 / (1.0 + np.exp(-(HAZARD_INTERCEPT + score)))
