"""Differential privacy: DP events, accountants, per-dataset budgets and DP-SGD (Opacus).

Importing this package loads neither Opacus nor torch: the accountants import Opacus on
first use, and the DP-SGD names (:mod:`privacy.dp.sgd`, which needs torch) resolve on first
access. A participant in privacy mode ``he`` runs in a fresh process for every Flower
message and never pays for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .accounting import KINDS, PrivacyAccountant, epsilon_for, noise_multiplier_for
from .budget import BudgetCharge, PrivacyBudget
from .events import DPEvent

if TYPE_CHECKING:
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

_LAZY = {"PrivateTraining": "sgd", "dp_event_for": "sgd", "make_private": "sgd"}


def __getattr__(name: str) -> Any:
    """Resolve the DP-SGD names on first use (PEP 562), so that torch loads only then."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
