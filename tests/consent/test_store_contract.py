"""Contract tests: every ConsentStore backend answers the training query alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consent import (
    ConsentStore,
    GrantAlreadyWithdrawnError,
    GrantId,
    InvalidGrantError,
    UnknownGrantError,
)
from tests.consent.builders import T0, TRAINING_CATEGORIES, add_grant

ONE_SECOND = timedelta(seconds=1)


def _active(store: ConsentStore, **kwargs: object) -> frozenset[str]:
    query: dict[str, object] = {
        "purpose": "model_training",
        "categories": TRAINING_CATEGORIES,
        "at": T0 + timedelta(days=10),
    }
    query.update(kwargs)
    return store.active_subjects(**query)  # type: ignore[arg-type]


def test_active_grant_makes_subject_eligible(store: ConsentStore) -> None:
    add_grant(store, "S1")

    assert _active(store) == {"S1"}


def test_expiry_is_exact(store: ConsentStore) -> None:
    grant = add_grant(store, "S1")
    assert grant.expires_at is not None

    before = _active(store, at=grant.expires_at - ONE_SECOND)
    at_expiry = _active(store, at=grant.expires_at)

    assert before == {"S1"}
    assert at_expiry == frozenset()


def test_start_is_inclusive(store: ConsentStore) -> None:
    add_grant(store, "S1")

    assert _active(store, at=T0 - ONE_SECOND) == frozenset()
    assert _active(store, at=T0) == {"S1"}


def test_open_ended_grant_never_expires(store: ConsentStore) -> None:
    add_grant(store, "S1", expires_at=None)

    assert _active(store, at=T0 + timedelta(days=3650)) == {"S1"}


def test_withdrawal_takes_effect_from_its_instant_only(store: ConsentStore) -> None:
    grant = add_grant(store, "S1")
    withdrawn_at = T0 + timedelta(days=5)

    store.withdraw(grant.grant_id, at=withdrawn_at)

    assert _active(store, at=withdrawn_at - ONE_SECOND) == {"S1"}
    assert _active(store, at=withdrawn_at) == frozenset()


def test_purpose_must_match_exactly(store: ConsentStore) -> None:
    add_grant(store, "S1", purpose="marketing")
    add_grant(store, "S2", purpose="credit_scoring")

    assert _active(store) == frozenset()
    assert _active(store, purpose="marketing") == {"S1"}


def test_grant_must_cover_every_requested_category(store: ConsentStore) -> None:
    add_grant(store, "S1", categories=["bank.transactions"])
    add_grant(store, "S2", categories=["bank.transactions", "bank.loans", "gov.tax"])

    assert _active(store) == {"S2"}
    assert _active(store, categories=["bank.transactions"]) == {"S1", "S2"}


def test_institution_filter(store: ConsentStore) -> None:
    add_grant(store, "S1", institution="bank")
    add_grant(store, "S2", institution="other-bank")

    assert _active(store, institution="bank") == {"S1"}
    assert _active(store) == {"S1", "S2"}


def test_one_active_grant_among_dead_ones_is_enough(store: ConsentStore) -> None:
    old = add_grant(store, "S1", expires_at=T0 + timedelta(days=1))
    store.withdraw(add_grant(store, "S1").grant_id, at=T0 + timedelta(days=2))
    add_grant(store, "S1", starts_at=T0 + timedelta(days=3))

    assert old.expires_at is not None
    assert _active(store) == {"S1"}


def test_exclusion_reasons_counts_each_reason(store: ConsentStore) -> None:
    at = T0 + timedelta(days=10)
    add_grant(store, "active")
    withdrawn = add_grant(store, "withdrawn")
    store.withdraw(withdrawn.grant_id, at=T0 + timedelta(days=1))
    add_grant(store, "expired", expires_at=T0 + timedelta(days=2))
    add_grant(store, "future", starts_at=T0 + timedelta(days=20))
    add_grant(store, "marketing_only", purpose="marketing")
    add_grant(store, "partial", categories=["bank.loans"])
    subjects = [
        "active",
        "withdrawn",
        "expired",
        "future",
        "marketing_only",
        "partial",
        "nobody",
        "nobody",
    ]

    counts = store.exclusion_reasons(
        subjects, purpose="model_training", categories=TRAINING_CATEGORIES, at=at
    )

    assert dict(counts) == {
        "withdrawn": 1,
        "expired": 1,
        "not_yet_valid": 1,
        "wrong_purpose": 1,
        "categories_not_covered": 1,
        "never_granted": 1,
    }


def test_per_subject_decisions_agree_with_the_batched_ones(store: ConsentStore) -> None:
    at = T0 + timedelta(days=10)
    longest = add_grant(store, "S1", purpose="credit_scoring", expires_at=T0 + timedelta(days=90))
    add_grant(store, "S1", purpose="credit_scoring", expires_at=T0 + timedelta(days=30))
    gone = add_grant(store, "S2", purpose="credit_scoring")
    store.withdraw(gone.grant_id, at=T0 + timedelta(days=1))
    add_grant(store, "S3", purpose="credit_scoring", institution="other-bank")
    query = {"purpose": "credit_scoring", "categories": ["bank.loans"], "at": at}

    one_by_one = {s: store.decide(s, **query, institution="bank") for s in ("S1", "S2", "S3", "S4")}
    batched = store.decide_many(["S4", "S3", "S2", "S1", "S1"], **query, institution="bank")

    assert batched == one_by_one
    assert (one_by_one["S1"].allowed, one_by_one["S1"].grant_id) == (True, longest.grant_id)
    assert one_by_one["S1"].expires_at == longest.expires_at
    assert [one_by_one[s].reason for s in ("S2", "S3", "S4")] == [
        "withdrawn",
        "never_granted",
        "never_granted",
    ]


def test_events_are_append_only_and_in_order(store: ConsentStore) -> None:
    grant = add_grant(store, "S1", grant_id="g-1")
    store.withdraw("g-1", at=T0 + timedelta(days=1))

    events = store.events()

    assert [(e.kind, e.grant_id) for e in events] == [("granted", "g-1"), ("withdrawn", "g-1")]
    assert events[0].grant == grant
    assert store.states()[GrantId("g-1")].withdrawn_at == T0 + timedelta(days=1)


def test_withdrawing_twice_or_unknown_is_refused(store: ConsentStore) -> None:
    add_grant(store, "S1", grant_id="g-1")
    store.withdraw("g-1", at=T0 + timedelta(days=1))

    with pytest.raises(GrantAlreadyWithdrawnError):
        store.withdraw("g-1", at=T0 + timedelta(days=2))
    with pytest.raises(UnknownGrantError):
        store.withdraw("missing", at=T0)
    assert len(store.events()) == 2


def test_duplicate_grant_id_is_refused_and_batch_is_atomic(store: ConsentStore) -> None:
    add_grant(store, "S1", grant_id="g-1")

    with pytest.raises(InvalidGrantError):
        add_grant(store, "S2", grant_id="g-1")

    assert _active(store) == {"S1"}


def test_unknown_purpose_and_naive_datetimes_are_refused(store: ConsentStore) -> None:
    with pytest.raises(InvalidGrantError):
        add_grant(store, "S1", purpose="resale")
    with pytest.raises(InvalidGrantError):
        add_grant(store, "S1", starts_at=T0.replace(tzinfo=None))
    with pytest.raises(InvalidGrantError):
        _active(store, at=T0.replace(tzinfo=None))
    with pytest.raises(InvalidGrantError):
        _active(store, categories=[])
    assert store.events() == []
