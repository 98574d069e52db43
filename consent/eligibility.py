"""Which subjects may be used for a purpose at an instant, and why the others may not.

Pure functions over folded grant state, shared by every :class:`~consent.store.ConsentStore`
backend so that they all answer alike. A subject is eligible when at least one of its grants
is for exactly the requested purpose, covers every requested category, has not been withdrawn
and satisfies ``starts_at <= at < expires_at``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from consent.grants import (
    ExclusionReason,
    GrantId,
    GrantState,
    SubjectId,
    ensure_utc,
    states_by_subject,
    validate_categories,
    validate_purpose,
)

__all__ = [
    "ConsentDecision",
    "decide",
    "eligible_subjects",
    "exclusion_reason",
    "exclusion_reasons",
]

# When several covering grants are all unusable, report the one the subject acted on last.
_STATUS_PRIORITY: tuple[ExclusionReason, ...] = ("withdrawn", "expired", "not_yet_valid")


def _normalise(
    purpose: str, categories: Iterable[str], at: datetime
) -> tuple[str, frozenset[str], datetime]:
    return (
        validate_purpose(purpose),
        validate_categories(categories),
        ensure_utc(at, name="at"),
    )


def exclusion_reason(
    states: Sequence[GrantState],
    *,
    purpose: str,
    categories: frozenset[str],
    at: datetime,
    institution: str | None = None,
) -> ExclusionReason | None:
    """Why a subject with grant ``states`` may not be used; ``None`` when it may.

    The reason names the closest miss: no grant at all, then a grant for another purpose,
    then one for the purpose that does not cover the categories, then (among covering
    grants) withdrawn before expired before not yet valid.
    """
    relevant = [s for s in states if institution is None or s.grant.institution == institution]
    if not relevant:
        return "never_granted"
    same_purpose = [s for s in relevant if s.grant.purpose == purpose]
    if not same_purpose:
        return "wrong_purpose"
    covering = [s for s in same_purpose if categories <= s.grant.categories]
    if not covering:
        return "categories_not_covered"
    statuses = {s.status_at(at) for s in covering}
    if "active" in statuses:
        return None
    for reason in _STATUS_PRIORITY:
        if reason in statuses:
            return reason
    raise AssertionError(f"unexpected grant statuses {statuses!r}")  # pragma: no cover


def eligible_subjects(
    states: Mapping[GrantId, GrantState],
    *,
    purpose: str,
    categories: Iterable[str],
    at: datetime,
    institution: str | None = None,
) -> frozenset[SubjectId]:
    """Subjects with an active grant for ``purpose`` covering ``categories`` at ``at``."""
    purpose, wanted, at = _normalise(purpose, categories, at)
    return frozenset(
        state.grant.subject_id
        for state in states.values()
        if (institution is None or state.grant.institution == institution)
        and state.grant.covers(purpose=purpose, categories=wanted)
        and state.is_active(at)
    )


def exclusion_reasons(
    states: Mapping[GrantId, GrantState],
    subject_ids: Iterable[str],
    *,
    purpose: str,
    categories: Iterable[str],
    at: datetime,
    institution: str | None = None,
) -> Counter[str]:
    """Count, by reason, the subjects of ``subject_ids`` that may not be used.

    Eligible subjects are not counted; each excluded subject counts once. Only counts leave
    this function, never subject ids, so the result can go into a round record.
    """
    purpose, wanted, at = _normalise(purpose, categories, at)
    grouped = states_by_subject(states)
    counts: Counter[str] = Counter()
    for subject_id in dict.fromkeys(subject_ids):
        reason = exclusion_reason(
            grouped.get(SubjectId(subject_id), []),
            purpose=purpose,
            categories=wanted,
            at=at,
            institution=institution,
        )
        if reason is not None:
            counts[reason] += 1
    return counts


@dataclass(frozen=True)
class ConsentDecision:
    """Whether one use of one subject is allowed and, if so, under which grant."""

    allowed: bool
    reason: ExclusionReason | None
    grant_id: GrantId | None
    expires_at: datetime | None = None


def decide(
    states: Sequence[GrantState],
    *,
    purpose: str,
    categories: Iterable[str],
    at: datetime,
    institution: str | None = None,
) -> ConsentDecision:
    """The decision for a subject whose grants are ``states``: allowed under the active
    covering grant that lasts longest, or refused with :func:`exclusion_reason`'s reason."""
    purpose, wanted, at = _normalise(purpose, categories, at)
    usable = [
        s
        for s in states
        if (institution is None or s.grant.institution == institution)
        and s.grant.covers(purpose=purpose, categories=wanted)
        and s.is_active(at)
    ]
    if usable:
        best = max(usable, key=lambda s: (s.grant.expires_at is None, s.grant.expires_at or at))
        return ConsentDecision(True, None, best.grant.grant_id, best.grant.expires_at)
    reason = exclusion_reason(
        states, purpose=purpose, categories=wanted, at=at, institution=institution
    )
    return ConsentDecision(False, reason, None)
