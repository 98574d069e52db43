"""Applying a decision policy to one scored application: a pure, deterministic function.

:func:`decide` reads only what :class:`DecisionInputs` holds (the score rounded as the
ledger keeps it, the consent check's outcome, the model's age, the application's figures),
so the same record and the same policy give the same decision, bit for bit, years later.

Outcomes: a new applicant is ``approve``\\ d (with a limit), ``refer``\\ red to an officer or
``decline``\\ d; an existing customer's limit is raised (``increase``), kept (``keep``) or the
file is referred. Two guarantees hold whatever the policy says: without an active
``credit_scoring`` consent (the model never ran) and with a model older than the policy
allows, nothing is approved or increased.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from models.scoring import risk_band

from .policy import DecisionPolicy

__all__ = [
    "OUTCOMES",
    "Decision",
    "DecisionInputs",
    "Reason",
    "decide",
    "model_age_days",
    "score_as_recorded",
]

OUTCOMES: Final = ("approve", "decline", "increase", "keep", "refer")
#: Decimal places of a score as the evidence ledger records it (and decisions read it).
SCORE_DECIMALS: Final = 6
_SEVERITY: Final = {"approve": 0, "refer": 1, "decline": 2}


def model_age_days(created_at: str, at: datetime) -> float:
    """Days from a model version's publication (its card's ``created_at``) to ``at``,
    rounded to 1e-6 days as a decision records it."""
    created = datetime.fromisoformat(created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return round((at - created).total_seconds() / 86_400, 6)


def score_as_recorded(score: float) -> float:
    """``score`` as the ledger keeps it; a decision reads this value, never more digits."""
    return round(float(score), SCORE_DECIMALS)


@dataclass(frozen=True)
class Reason:
    """Why: a stable code for systems and a sentence with the figures for a person."""

    code: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass(frozen=True)
class DecisionInputs:
    """Everything a decision depends on. ``score`` is ``None`` when the model did not run
    (no consent, or no node holds the subject); ``figures`` maps application fields (and
    the indicators the policy's rules name) to numbers, ``None`` where absent."""

    score: float | None
    consent_allowed: bool
    consent_reason: str | None
    model_version: str
    model_age_days: float
    figures: Mapping[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "consent_allowed": self.consent_allowed,
            "consent_reason": self.consent_reason,
            "model_version": self.model_version,
            "model_age_days": self.model_age_days,
            "figures": dict(sorted(self.figures.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionInputs:
        return cls(
            score=data["score"],
            consent_allowed=bool(data["consent_allowed"]),
            consent_reason=data["consent_reason"],
            model_version=str(data["model_version"]),
            model_age_days=float(data["model_age_days"]),
            figures=dict(data["figures"]),
        )


@dataclass(frozen=True)
class Decision:
    """The outcome, the credit limit after it (0 when nothing is granted), the limit before
    (existing customers), and the reasons in the order they were found."""

    outcome: str
    limit: float
    previous_limit: float | None
    band: str | None
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "limit": self.limit,
            "previous_limit": self.previous_limit,
            "band": self.band,
            "reasons": [r.to_dict() for r in self.reasons],
        }


def decide(policy: DecisionPolicy, inputs: DecisionInputs) -> Decision:
    """The decision ``policy`` gives for ``inputs`` (see the module docstring)."""
    current = inputs.figures.get("current_limit")
    previous_limit = float(current) if current is not None and current > 0 else None
    existing = previous_limit is not None
    held = previous_limit or 0.0
    if not inputs.consent_allowed:
        why = inputs.consent_reason or "never_granted"
        reason = Reason(
            f"consent_{why}",
            f"no active credit_scoring consent ({why.replace('_', ' ')}): the model was not "
            "run; ask the applicant to grant consent through the bank's channel",
        )
        return Decision("refer", held, previous_limit, None, (reason,))
    if inputs.score is None:
        reason = Reason("no_score", "no participant holds data for this subject: no score")
        return Decision("refer", held, previous_limit, None, (reason,))
    score = inputs.score
    band = risk_band(score)
    outcome, reasons = _score_outcome(policy, score, band)
    for rule in policy.rules:
        figure = inputs.figures.get(rule.condition.field)
        if figure is None or (isinstance(figure, float) and math.isnan(figure)):
            outcome = _worst(outcome, "refer")
            reasons.append(_missing(rule.condition.field))
        elif rule.condition.holds(figure):
            outcome = _worst(outcome, rule.outcome)
            reasons.append(_rule_reason(rule.condition.field, rule.condition.reason, figure))
    stale = inputs.model_age_days > policy.max_model_age_days
    if stale:
        reasons.append(
            Reason(
                "model_stale",
                f"model {policy.model} {inputs.model_version} is {inputs.model_age_days:.0f} "
                f"days old, more than the policy's {policy.max_model_age_days:.0f}: "
                "retrain or refer",
            )
        )
    if existing:
        return _existing(policy, inputs, outcome, reasons, band=band, stale=stale)
    if outcome == "approve" and stale:
        outcome = "refer"
    if outcome != "approve":
        return Decision(outcome, 0.0, None, band, tuple(reasons))
    limit = _new_limit(policy, band, inputs.figures.get("requested_amount"), reasons)
    if limit <= 0:
        return Decision("refer", 0.0, None, band, tuple(reasons))
    return Decision("approve", limit, None, band, tuple(reasons))


def _score_outcome(policy: DecisionPolicy, score: float, band: str) -> tuple[str, list[Reason]]:
    if score < policy.approve_below:
        text = f"score {score:.4f} (band {band}) is below the approval threshold"
        return "approve", [Reason("score_low_risk", f"{text} {policy.approve_below}")]
    if score >= policy.decline_at_or_above:
        text = f"score {score:.4f} (band {band}) is at or above the decline threshold"
        return "decline", [Reason("score_high_risk", f"{text} {policy.decline_at_or_above}")]
    text = (
        f"score {score:.4f} (band {band}) lies between {policy.approve_below} and "
        f"{policy.decline_at_or_above}: an officer decides"
    )
    return "refer", [Reason("score_refer_zone", text)]


def _worst(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _missing(name: str) -> Reason:
    return Reason(f"missing_{name}", f"the application lacks {name}, which the policy checks")


def _rule_reason(name: str, text: str, figure: float) -> Reason:
    return Reason(f"rule_{name}", f"{text} ({name} = {figure:g})")


def _round_down(amount: float, unit: float) -> float:
    return float(math.floor(amount / unit) * unit)


def _new_limit(
    policy: DecisionPolicy, band: str, requested: float | None, reasons: list[Reason]
) -> float:
    offered = policy.limit_by_band.get(band)
    if offered is None:
        reasons.append(Reason("no_limit_for_band", f"the policy sets no limit for band {band}"))
        return 0.0
    limit = offered
    if requested is not None and requested > 0 and requested < offered:
        limit = requested
    limit = _round_down(limit, policy.round_down_to)
    unit = f" {policy.currency}"
    if requested is not None and requested > 0:
        text = f"limit {limit:,.0f}{unit}: the lesser of the {requested:,.0f} asked for and "
    else:
        text = f"limit {limit:,.0f}{unit}: "
    reasons.append(Reason("limit_by_band", f"{text}band {band}'s {offered:,.0f}"))
    return limit


def _existing(
    policy: DecisionPolicy,
    inputs: DecisionInputs,
    outcome: str,
    reasons: list[Reason],
    *,
    band: str,
    stale: bool,
) -> Decision:
    """An existing customer: never cut automatically (deterioration goes to an officer);
    raised only when the policy's increase conditions all hold."""
    current = float(inputs.figures["current_limit"] or 0.0)
    if outcome != "approve":
        reasons.append(Reason("review_by_officer", "the customer's risk rose: an officer reviews"))
        return Decision("refer", current, current, band, tuple(reasons))
    rule = policy.increase
    if rule is None or stale:
        return Decision("keep", current, current, band, tuple(reasons))
    assert inputs.score is not None
    before = inputs.figures.get("previous_score")
    if before is None or math.isnan(before):
        reasons.append(Reason("no_previous_score", "no earlier score to compare with: kept"))
        return Decision("keep", current, current, band, tuple(reasons))
    improvement = before - inputs.score
    blocked = False
    if improvement < rule.min_score_improvement:
        reasons.append(
            Reason(
                "score_not_improved",
                f"score moved from {before:.4f} to {inputs.score:.4f}, less than the "
                f"{rule.min_score_improvement} improvement an increase needs",
            )
        )
        blocked = True
    if inputs.score > rule.max_score:
        reasons.append(
            Reason(
                "score_above_increase_limit",
                f"score {inputs.score:.4f} is above {rule.max_score}, the most an increase allows",
            )
        )
        blocked = True
    for condition in rule.require:
        figure = inputs.figures.get(condition.field)
        if figure is None or math.isnan(figure):
            reasons.append(_missing(condition.field))
            blocked = True
        elif not condition.holds(figure):
            reasons.append(
                Reason(
                    f"increase_{condition.field}",
                    f"{condition.reason} ({condition.field} = {figure:g}, "
                    f"needs {condition.op} {condition.value:g})",
                )
            )
            blocked = True
    raised = min(rule.max_limit, _round_down(current * (1 + rule.step), policy.round_down_to))
    if blocked or raised <= current:
        if not blocked:
            reasons.append(
                Reason(
                    "at_max_limit", f"the limit is at the policy's maximum {rule.max_limit:,.0f}"
                )
            )
        return Decision("keep", current, current, band, tuple(reasons))
    reasons.append(
        Reason(
            "credit_increase",
            f"score improved from {before:.4f} to {inputs.score:.4f}: limit raised from "
            f"{current:,.0f} to {raised:,.0f} {policy.currency}",
        )
    )
    return Decision("increase", raised, current, band, tuple(reasons))
