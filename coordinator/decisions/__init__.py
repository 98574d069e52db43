"""Lending decisions: versioned policies applied after scoring, evidenced and replayable.

DESIGN.md, "Lending workflows": a decision policy per model (approve / refer / decline, a
limit, automatic credit increases), applied by the coordinator after scoring; every
decision and its policy version go into the ledger and can be replayed from it.
"""

from __future__ import annotations

from .engine import OUTCOMES, Decision, DecisionInputs, Reason, decide
from .errors import ApplicationError, DecisionError, PolicyError
from .policy import DecisionPolicy, load_policies, load_policy, policy_from_dict
from .portfolio import PortfolioSummary, decide_file
from .replay import ReplayReport, replay_ledger

__all__ = [
    "OUTCOMES",
    "ApplicationError",
    "Decision",
    "DecisionError",
    "DecisionInputs",
    "DecisionPolicy",
    "PolicyError",
    "PortfolioSummary",
    "Reason",
    "ReplayReport",
    "decide",
    "decide_file",
    "load_policies",
    "load_policy",
    "policy_from_dict",
    "replay_ledger",
]
