"""The grant value objects and the fold of the event log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from consent import Grant, GrantEvent, GrantId, InvalidGrantError, SubjectId, current_grants
from tests.consent.builders import T0


def _grant(**overrides: object) -> Grant:
    fields: dict[str, object] = {
        "grant_id": GrantId("g-1"),
        "subject_id": SubjectId("S1"),
        "institution": "bank",
        "purpose": "model_training",
        "categories": frozenset({"bank.loans"}),
        "starts_at": T0,
        "expires_at": T0 + timedelta(days=30),
        "evidence_hash": "sha256:00",
        "channel": "branch_counter",
    }
    fields.update(overrides)
    return Grant(**fields)  # type: ignore[arg-type]


def test_times_are_normalised_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))

    grant = _grant(starts_at=datetime(2026, 1, 1, 8, tzinfo=beijing))

    assert grant.starts_at == T0
    assert grant.starts_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"expires_at": T0},
        {"categories": frozenset()},
        {"categories": frozenset({" "})},
        {"purpose": "Model_Training"},
        {"subject_id": ""},
        {"starts_at": datetime(2026, 1, 1)},
    ],
)
def test_malformed_grants_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidGrantError):
        _grant(**overrides)


def test_fold_applies_withdrawal_to_its_grant() -> None:
    grant = _grant()
    events = [
        GrantEvent.granted(grant, at=T0),
        GrantEvent.granted(_grant(grant_id=GrantId("g-2")), at=T0),
        GrantEvent.withdrawn("g-1", at=T0 + timedelta(days=1)),
    ]

    states = current_grants(events)

    assert states[GrantId("g-1")].status_at(T0 + timedelta(days=1)) == "withdrawn"
    assert states[GrantId("g-1")].status_at(T0) == "active"
    assert states[GrantId("g-2")].withdrawn_at is None


def test_withdrawn_event_carries_no_grant() -> None:
    with pytest.raises(InvalidGrantError):
        GrantEvent(kind="withdrawn", grant_id=GrantId("g-1"), at=T0, grant=_grant())
