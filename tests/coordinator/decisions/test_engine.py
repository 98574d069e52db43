"""Applying a policy to one application (coordinator/decisions/engine.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.decisions import DecisionInputs, decide, load_policy
from coordinator.decisions.policy import DEFAULT_POLICIES

POLICY = load_policy(DEFAULT_POLICIES / "iot.toml")
HEALTHY = {"receivable_overdue_days": 10.0, "mes_erp_mismatch": 0.01, "order_growth": 0.05}


def _inputs(score: float | None = 0.04, *, age: float = 10.0, consent: bool = True,
            **figures: float | None) -> DecisionInputs:  # fmt: skip
    return DecisionInputs(
        score=score,
        consent_allowed=consent,
        consent_reason=None if consent else "withdrawn",
        model_version="3",
        model_age_days=age,
        figures={**HEALTHY, **figures},
    )


def _codes(decision: object) -> list[str]:
    return [r.code for r in decision.reasons]  # type: ignore[attr-defined]


def test_a_low_score_is_approved_with_the_lesser_of_the_band_limit_and_the_ask() -> None:
    band_b = decide(POLICY, _inputs(0.03))
    asked_less = decide(POLICY, _inputs(0.03, requested_amount=123_456.0))

    assert (band_b.outcome, band_b.band, band_b.limit) == ("approve", "B", 2_000_000.0)
    assert (asked_less.outcome, asked_less.limit) == ("approve", 120_000.0)  # rounded down
    assert "123,456 asked for" in asked_less.reasons[-1].text


@pytest.mark.parametrize(
    ("score", "outcome", "code"),
    [(0.0499, "approve", "score_low_risk"), (0.05, "refer", "score_refer_zone"),
     (0.2999, "refer", "score_refer_zone"), (0.30, "decline", "score_high_risk")],
)  # fmt: skip
def test_the_thresholds_split_approve_refer_and_decline(
    score: float, outcome: str, code: str
) -> None:
    decision = decide(POLICY, _inputs(score))

    assert decision.outcome == outcome
    assert _codes(decision)[0] == code
    assert f"{score:.4f}" in decision.reasons[0].text
    assert (decision.limit > 0) == (outcome == "approve")


def test_hard_rules_refer_or_decline_whatever_the_score() -> None:
    late = decide(POLICY, _inputs(0.01, receivable_overdue_days=120.0))
    idle = decide(POLICY, _inputs(0.01, receivable_overdue_days=200.0, mes_erp_mismatch=0.2))

    assert late.outcome == "refer" and "rule_receivable_overdue_days" in _codes(late)
    assert "receivable_overdue_days = 120" in late.reasons[-1].text
    assert idle.outcome == "decline"  # the worst outcome of all rules wins


def test_a_figure_a_rule_needs_but_the_application_lacks_refers() -> None:
    decision = decide(POLICY, _inputs(0.01, receivable_overdue_days=None))

    assert decision.outcome == "refer"
    assert "missing_receivable_overdue_days" in _codes(decision)


def test_without_consent_the_decision_is_a_referral_with_the_reason_and_no_score() -> None:
    decision = decide(POLICY, _inputs(None, consent=False))

    assert decision.outcome == "refer"
    assert _codes(decision) == ["consent_withdrawn"]
    assert decision.band is None and decision.limit == 0.0


def test_a_stale_model_refers_what_it_would_have_approved() -> None:
    decision = decide(POLICY, _inputs(0.01, age=181.0))

    assert decision.outcome == "refer"
    assert "model_stale" in _codes(decision)
    assert "181 days old" in decision.reasons[-1].text


def test_an_existing_customer_whose_score_improved_gets_an_increase() -> None:
    decision = decide(POLICY, _inputs(0.03, current_limit=1_000_000.0, previous_score=0.06))

    assert decision.outcome == "increase"
    assert (decision.previous_limit, decision.limit) == (1_000_000.0, 1_250_000.0)
    assert "0.0600 to 0.0300" in decision.reasons[-1].text


@pytest.mark.parametrize(
    ("figures", "code"),
    [
        ({"previous_score": 0.04}, "score_not_improved"),
        ({"previous_score": None}, "no_previous_score"),
        ({"previous_score": 0.09, "order_growth": -0.2}, "increase_order_growth"),
        ({"previous_score": 0.09, "current_limit": 5_000_000.0}, "at_max_limit"),
    ],
)
def test_an_existing_customer_keeps_the_limit_when_an_increase_condition_fails(
    figures: dict[str, float | None], code: str
) -> None:
    decision = decide(POLICY, _inputs(0.03, **{"current_limit": 1_000_000.0, **figures}))

    assert decision.outcome == "keep"
    assert decision.limit == decision.previous_limit
    assert code in _codes(decision)


def test_an_existing_customer_whose_risk_rose_is_referred_never_cut() -> None:
    decision = decide(POLICY, _inputs(0.5, current_limit=800_000.0, previous_score=0.04))

    assert decision.outcome == "refer"
    assert decision.limit == 800_000.0
    assert "review_by_officer" in _codes(decision)


@given(
    score=st.one_of(st.none(), st.floats(0.0, 1.0)),
    consent=st.booleans(),
    age=st.floats(0.0, 1000.0),
    current=st.one_of(st.none(), st.floats(0.0, 1e7)),
    previous=st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_no_consent_or_a_stale_model_never_yields_an_approval_or_increase(
    score: float | None, consent: bool, age: float, current: float | None, previous: float | None
) -> None:
    inputs = _inputs(score, consent=consent, age=age, current_limit=current,
                     previous_score=previous)  # fmt: skip

    decision = decide(POLICY, inputs)

    if not consent or age > POLICY.max_model_age_days or score is None:
        assert decision.outcome not in ("approve", "increase")
    assert decision.limit <= max(current or 0.0, POLICY.increase.max_limit)  # type: ignore[union-attr]
    assert decide(POLICY, DecisionInputs.from_dict(inputs.to_dict())) == decision
