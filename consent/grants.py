"""Consent grants as append-only events and their fold into current state.

A subject grants an institution the use of some data categories for one purpose, from a start
until an optional expiry, with evidence (the hash of the signed agreement and the channel it
came through). Grants are never edited: a withdrawal is a second event, and the state at any
instant is the fold of the event log (event sourcing). Times are always timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, NewType

from consent.errors import GrantAlreadyWithdrawnError, InvalidGrantError, UnknownGrantError

__all__ = [
    "EXCLUSION_REASONS",
    "PURPOSES",
    "EventKind",
    "ExclusionReason",
    "Grant",
    "GrantEvent",
    "GrantId",
    "GrantState",
    "GrantStatus",
    "SubjectId",
    "apply_event",
    "current_grants",
    "ensure_utc",
    "states_by_subject",
    "validate_categories",
    "validate_purpose",
]

SubjectId = NewType("SubjectId", str)
"""Pseudonymous id of a data subject (a farmer id or a firm's unified social credit code)."""

GrantId = NewType("GrantId", str)
"""Unique id of one grant; a withdrawal refers to it."""

PURPOSES: Final[frozenset[str]] = frozenset({"credit_scoring", "marketing", "model_training"})
"""Purposes a grant may name. A grant for one purpose never covers another."""

EventKind = Literal["granted", "withdrawn"]
GrantStatus = Literal["active", "withdrawn", "expired", "not_yet_valid"]
ExclusionReason = Literal[
    "never_granted",
    "withdrawn",
    "expired",
    "not_yet_valid",
    "wrong_purpose",
    "categories_not_covered",
]
EXCLUSION_REASONS: Final[tuple[ExclusionReason, ...]] = (
    "categories_not_covered",
    "expired",
    "never_granted",
    "not_yet_valid",
    "withdrawn",
    "wrong_purpose",
)


def ensure_utc(value: datetime, *, name: str) -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is refused, never guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidGrantError(f"{name} must be timezone-aware (UTC), got naive {value!r}")
    return value.astimezone(UTC)


def validate_purpose(purpose: str) -> str:
    """Return ``purpose`` if it is one of :data:`PURPOSES`, else raise."""
    if purpose not in PURPOSES:
        raise InvalidGrantError(f"purpose must be one of {sorted(PURPOSES)}, got {purpose!r}")
    return purpose


def validate_categories(categories: Iterable[str], *, allow_empty: bool = False) -> frozenset[str]:
    """Return the categories as a frozenset of non-blank strings, else raise."""
    if isinstance(categories, str):
        raise InvalidGrantError(f"categories must be a collection of names, got {categories!r}")
    result = frozenset(categories)
    bad = sorted(c for c in result if not isinstance(c, str) or not c.strip())
    if bad:
        raise InvalidGrantError(f"categories must be non-blank strings, got {bad!r}")
    if not result and not allow_empty:
        raise InvalidGrantError("categories must not be empty")
    return result


@dataclass(frozen=True, slots=True)
class Grant:
    """One consent: ``subject_id`` lets ``institution`` use ``categories`` for ``purpose``.

    Valid on the half-open interval ``[starts_at, expires_at)``; ``expires_at=None`` means
    until withdrawn.
    """

    grant_id: GrantId
    subject_id: SubjectId
    institution: str
    purpose: str
    categories: frozenset[str]
    starts_at: datetime
    expires_at: datetime | None
    evidence_hash: str
    channel: str

    def __post_init__(self) -> None:
        for name in ("grant_id", "subject_id", "institution", "evidence_hash", "channel"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidGrantError(f"{name} must be a non-blank string, got {value!r}")
        validate_purpose(self.purpose)
        object.__setattr__(self, "categories", validate_categories(self.categories))
        starts_at = ensure_utc(self.starts_at, name="starts_at")
        object.__setattr__(self, "starts_at", starts_at)
        if self.expires_at is not None:
            expires_at = ensure_utc(self.expires_at, name="expires_at")
            if expires_at <= starts_at:
                raise InvalidGrantError(
                    f"expires_at must be after starts_at, got {expires_at.isoformat()} "
                    f"<= {starts_at.isoformat()}"
                )
            object.__setattr__(self, "expires_at", expires_at)

    def covers(self, *, purpose: str, categories: frozenset[str]) -> bool:
        """Whether this grant is for exactly ``purpose`` and includes every category asked."""
        return self.purpose == purpose and categories <= self.categories

    def in_force_at(self, at: datetime) -> bool:
        """Whether ``at`` lies in ``[starts_at, expires_at)`` (ignoring withdrawal)."""
        return self.starts_at <= at and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True, slots=True)
class GrantEvent:
    """One entry of the append-only consent log.

    A ``granted`` event carries the :class:`Grant`; a ``withdrawn`` event names the grant and
    the instant from which it no longer holds.
    """

    kind: EventKind
    grant_id: GrantId
    at: datetime
    grant: Grant | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("granted", "withdrawn"):
            raise InvalidGrantError(f"kind must be 'granted' or 'withdrawn', got {self.kind!r}")
        object.__setattr__(self, "at", ensure_utc(self.at, name="at"))
        if self.kind == "granted":
            if self.grant is None or self.grant.grant_id != self.grant_id:
                raise InvalidGrantError(
                    f"a 'granted' event needs the grant with id {self.grant_id!r}"
                )
        elif self.grant is not None:
            raise InvalidGrantError("a 'withdrawn' event carries no grant")

    @classmethod
    def granted(cls, grant: Grant, *, at: datetime) -> GrantEvent:
        """The event recording ``grant``, made at ``at``."""
        return cls(kind="granted", grant_id=grant.grant_id, at=at, grant=grant)

    @classmethod
    def withdrawn(cls, grant_id: str, *, at: datetime) -> GrantEvent:
        """The event withdrawing ``grant_id`` with effect from ``at``."""
        return cls(kind="withdrawn", grant_id=GrantId(grant_id), at=at)


@dataclass(frozen=True, slots=True)
class GrantState:
    """A grant, when it was recorded and, if it was withdrawn, from when."""

    grant: Grant
    withdrawn_at: datetime | None = None
    granted_at: datetime | None = None

    def status_at(self, at: datetime) -> GrantStatus:
        """The grant's status at instant ``at``.

        A withdrawal is not retroactive: before ``withdrawn_at`` the grant held.
        """
        at = ensure_utc(at, name="at")
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return "withdrawn"
        if at < self.grant.starts_at:
            return "not_yet_valid"
        if self.grant.expires_at is not None and at >= self.grant.expires_at:
            return "expired"
        return "active"

    def is_active(self, at: datetime) -> bool:
        """Whether the grant holds at ``at``."""
        return self.status_at(at) == "active"


def apply_event(states: dict[GrantId, GrantState], event: GrantEvent) -> None:
    """Fold one event into ``states`` in place, refusing events the log could not contain."""
    if event.kind == "granted":
        if event.grant_id in states:
            raise InvalidGrantError(f"grant id {event.grant_id!r} was already recorded")
        assert event.grant is not None  # guaranteed by GrantEvent.__post_init__
        states[event.grant_id] = GrantState(grant=event.grant, granted_at=event.at)
        return
    state = states.get(event.grant_id)
    if state is None:
        raise UnknownGrantError(event.grant_id)
    if state.withdrawn_at is not None:
        raise GrantAlreadyWithdrawnError(f"grant {event.grant_id!r} is already withdrawn")
    states[event.grant_id] = GrantState(
        grant=state.grant, withdrawn_at=event.at, granted_at=state.granted_at
    )


def current_grants(events: Iterable[GrantEvent]) -> dict[GrantId, GrantState]:
    """Fold an event log (in append order) into the state of every grant, keyed by grant id."""
    states: dict[GrantId, GrantState] = {}
    for event in events:
        apply_event(states, event)
    return states


def states_by_subject(
    states: Mapping[GrantId, GrantState],
) -> dict[SubjectId, list[GrantState]]:
    """Group grant states by subject, keeping the log order within each subject."""
    grouped: dict[SubjectId, list[GrantState]] = {}
    for state in states.values():
        grouped.setdefault(state.grant.subject_id, []).append(state)
    return grouped
