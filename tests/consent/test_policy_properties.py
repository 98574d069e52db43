"""Property tests: the training query agrees with the consent rules for any timeline."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from consent import InMemoryConsentStore
from tests.consent.builders import T0, TRAINING_CATEGORIES, add_grant

SECONDS = st.integers(min_value=0, max_value=10 * 86_400)
ALL_CATEGORIES = ("bank.loans", "bank.transactions", "gov.tax")


@given(
    start_s=SECONDS,
    length_s=st.one_of(st.none(), st.integers(min_value=1, max_value=10 * 86_400)),
    withdraw_s=st.one_of(st.none(), SECONDS),
    query_s=SECONDS,
    purpose=st.sampled_from(["model_training", "credit_scoring", "marketing"]),
    categories=st.sets(st.sampled_from(ALL_CATEGORIES), min_size=1),
)
def test_active_exactly_when_every_rule_holds(
    start_s: int,
    length_s: int | None,
    withdraw_s: int | None,
    query_s: int,
    purpose: str,
    categories: set[str],
) -> None:
    store = InMemoryConsentStore()
    starts_at = T0 + timedelta(seconds=start_s)
    expires_at = None if length_s is None else starts_at + timedelta(seconds=length_s)
    grant = add_grant(
        store,
        "S1",
        purpose=purpose,
        categories=categories,
        starts_at=starts_at,
        expires_at=expires_at,
    )
    if withdraw_s is not None:
        store.withdraw(grant.grant_id, at=T0 + timedelta(seconds=withdraw_s))
    at = T0 + timedelta(seconds=query_s)

    active = store.active_subjects(purpose="model_training", categories=TRAINING_CATEGORIES, at=at)
    reasons = store.exclusion_reasons(
        ["S1"], purpose="model_training", categories=TRAINING_CATEGORIES, at=at
    )

    expected = (
        purpose == "model_training"
        and set(TRAINING_CATEGORIES) <= categories
        and starts_at <= at
        and (expires_at is None or at < expires_at)
        and (withdraw_s is None or at < T0 + timedelta(seconds=withdraw_s))
    )
    assert (active == {"S1"}) == expected
    assert (sum(reasons.values()) == 0) == expected
