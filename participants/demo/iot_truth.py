"""Hidden ground truth of the IoT (factory) risk model.

A firm's monthly hazard of defaulting or going 90+ days past due on its bank loan depends,
non-linearly and with interactions, on indicators that vary in *different* parks: customer
payment stress (heavier when the firm depends on one customer), customer concentration,
idle capacity, reporting inconsistencies (交叉验真), energy drifting away from output, poor
quality, orders cancelled after production, falling orders and activity. Each park shows only
some of these, so a model trained in one park misjudges firms of another. Nothing here is
written into any node's features.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import numpy as np

__all__ = [
    "HAZARD_INTERCEPT",
    "RISK_WEIGHTS",
    "iot_risk_score",
    "iot_risk_terms",
    "monthly_hazard",
]

HAZARD_INTERCEPT: Final = -8.2
"""Log-odds of the monthly hazard for a firm with no risk signal at all."""

RISK_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "customer_stress": 3.75,
        "long_overdue": 2.25,
        "concentration": 9.0,
        "order_decline": 0.75,
        "activity_decline": 0.75,
        "idle_capacity": 7.5,
        "reporting_mismatch": 18.0,
        "energy_drift": 4.5,
        "quality": 2.25,
        "unshipped_orders": 6.0,
    }
)
"""Weight of each risk term in the score; the terms are defined in :func:`iot_risk_terms`."""


def _relu(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(x, 0.0))


def iot_risk_terms(ind: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The unweighted risk terms of a month's indicators (hinges, caps and interactions)."""
    overdue = ind["receivable_overdue_ratio"]
    concentration = ind["top_customer_share"]
    return {
        "customer_stress": overdue * (0.4 + 1.6 * concentration),
        "long_overdue": overdue * _relu(ind["receivable_overdue_days"] / 90.0 - 0.3),
        "concentration": _relu(concentration - 0.5),
        "order_decline": _relu(-ind["order_growth"] - 0.1),
        "activity_decline": _relu(-ind["run_hours_trend"] - 0.15),
        "idle_capacity": _relu(0.25 - ind["utilisation"]),
        "reporting_mismatch": np.minimum(ind["mes_erp_mismatch"], 0.3),
        "energy_drift": _relu(ind["energy_per_unit_drift"] - 0.15),
        "quality": _relu(np.log(np.maximum(ind["defect_rate"], 1e-6) / 0.012)),
        "unshipped_orders": _relu(0.9 - ind["ship_to_order_ratio"]),
    }


def iot_risk_score(ind: Mapping[str, np.ndarray]) -> np.ndarray:
    """Risk score (log-odds shift of the monthly hazard) from a month's indicators."""
    score: np.ndarray | None = None
    for name, value in iot_risk_terms(ind).items():
        weighted = RISK_WEIGHTS[name] * value
        score = weighted if score is None else score + weighted
    assert score is not None
    return score


def monthly_hazard(score: np.ndarray) -> np.ndarray:
    """Monthly probability of the default event given the previous month's risk score."""
    return 1.0 / (1.0 + np.exp(-(HAZARD_INTERCEPT + score)))
