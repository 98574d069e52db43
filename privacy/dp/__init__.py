"""Differential privacy: DP events, accountants, per-dataset budgets and DP-SGD (Opacus)."""

from __future__ import annotations

from .accounting import KINDS, PrivacyAccountant, epsilon_for, noise_multiplier_for
from .budget import BudgetCharge, PrivacyBudget
from .events import DPEvent
from .sgd import PrivateTraining, dp_event_for, make_private

__all__ = [
    "BudgetCharge",
    "DPEvent",
    "KINDS",
    "PrivacyAccountant",
    "PrivacyBudget",
    "PrivateTraining",
    "dp_event_for",
    "epsilon_for",
    "make_private",
    "noise_multiplier_for",
]
