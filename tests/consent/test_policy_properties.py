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


GRANT = st.fixed_dictionaries(
    {
        "institution": st.sampled_from(["bank-a", "bank-b"]),
        "purpose": st.sampled_from(["model_training", "credit_scoring", "marketing"]),
        "categories": st.sets(st.sampled_from(ALL_CATEGORIES), min_size=1),
        "start_s": SECONDS,
        "length_s": st.one_of(st.none(), st.integers(min_value=1, max_value=10 * 86_400)),
        "withdraw_s": st.one_of(st.none(), SECONDS),
    }
)


@given(
    grants=st.lists(GRANT, max_size=6),
    institution=st.sampled_from(["bank-a", "bank-b"]),
    wanted=st.sets(st.sampled_from(ALL_CATEGORIES), min_size=1),
    query_s=SECONDS,
)
def test_a_scoring_request_is_allowed_iff_an_active_matching_grant_exists(
    grants: list[dict[str, object]], institution: str, wanted: set[str], query_s: int
) -> None:
    store = InMemoryConsentStore()
    at = T0 + timedelta(seconds=query_s)
    matching = set()
    for n, g in enumerate(grants):
        starts_at = T0 + timedelta(seconds=int(g["start_s"]))  # type: ignore[call-overload]
        length = g["length_s"]
        expires_at = None if length is None else starts_at + timedelta(seconds=int(length))  # type: ignore[call-overload]
        grant = add_grant(
            store,
            "S1",
            purpose=str(g["purpose"]),
            institution=str(g["institution"]),
            categories=g["categories"],
            starts_at=starts_at,  # type: ignore[arg-type]
            expires_at=expires_at,
            grant_id=f"g{n}",
        )
        withdrawn_at = None
        if g["withdraw_s"] is not None:
            withdrawn_at = T0 + timedelta(seconds=int(g["withdraw_s"]))  # type: ignore[call-overload]
            store.withdraw(grant.grant_id, at=withdrawn_at)
        if (
            g["institution"] == institution
            and g["purpose"] == "credit_scoring"
            and wanted <= g["categories"]
            and starts_at <= at  # type: ignore[operator]
            and (expires_at is None or at < expires_at)
            and (withdrawn_at is None or at < withdrawn_at)
        ):
            matching.add(grant.grant_id)

    decision = store.decide(
        "S1", purpose="credit_scoring", categories=wanted, at=at, institution=institution
    )
    many = store.decide_many(
        ["S1"], purpose="credit_scoring", categories=wanted, at=at, institution=institution
    )["S1"]

    assert decision.allowed == bool(matching) == many.allowed
    assert (decision.grant_id in matching) if matching else decision.reason is not None
