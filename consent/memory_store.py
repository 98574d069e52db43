"""In-memory consent store, for tests and ephemeral simulations."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from consent.grants import (
    GrantEvent,
    GrantId,
    GrantState,
    SubjectId,
    current_grants,
    states_by_subject,
)
from consent.store import ConsentStore

__all__ = ["InMemoryConsentStore"]


class InMemoryConsentStore(ConsentStore):
    """Keeps the event log in a list; lost when the process ends."""

    def __init__(self) -> None:
        self._events: list[GrantEvent] = []

    def events(self) -> list[GrantEvent]:
        return list(self._events)

    def _states_for(self, grant_ids: Collection[GrantId]) -> dict[GrantId, GrantState]:
        wanted = set(grant_ids)
        return current_grants(e for e in self._events if e.grant_id in wanted)

    def _write(self, events: Sequence[GrantEvent]) -> None:
        self._events.extend(events)

    def event_count(self) -> int:
        return len(self._events)

    def _subject_states_many(self, subject_ids: Sequence[str]) -> dict[SubjectId, list[GrantState]]:
        wanted = set(subject_ids)
        grants = {
            e.grant_id for e in self._events if e.grant is not None and e.grant.subject_id in wanted
        }
        return states_by_subject(self._states_for(grants))
