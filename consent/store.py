"""Consent stores: the append-only grant log behind the training and scoring checks.

:class:`ConsentStore` is the seam every backend implements (write and read events); the
queries are answered by the shared fold in :mod:`consent.eligibility`, so that every backend
answers alike. :class:`SQLAlchemyConsentStore` keeps the log in one append-only
``consent_events`` table and commits each append in its own transaction, so a crash loses at
most the append in flight; :class:`SQLiteConsentStore` is the embedded default.
"""

from __future__ import annotations

import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import (
    DDL,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    func,
    select,
)
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from consent.eligibility import ConsentDecision, decide, eligible_subjects
from consent.eligibility import exclusion_reasons as _exclusion_reasons
from consent.errors import ConsentError, InvalidGrantError, UnknownGrantError
from consent.grants import (
    Grant,
    GrantEvent,
    GrantId,
    GrantState,
    SubjectId,
    apply_event,
    current_grants,
    ensure_utc,
    states_by_subject,
)
from consent.sqlite import sqlite_engine

__all__ = ["ConsentStore", "SQLAlchemyConsentStore", "SQLiteConsentStore"]

logger = logging.getLogger(__name__)


class ConsentStore(ABC):
    """An append-only log of :class:`GrantEvent` plus the queries the platform needs.

    Backends implement :meth:`events`, :meth:`_states_for`, :meth:`_subject_states_many`,
    :meth:`event_count` and :meth:`_write`; everything else is shared, so a contract test
    over all backends checks one behaviour.
    """

    #: Whether a consent check may run on a server's event loop: true where a read is a
    #: local, sub-millisecond lookup (memory, an SQLite file); a networked database is read
    #: from a worker thread so that a slow server stalls only its own requests.
    reads_inline: bool = True

    @abstractmethod
    def events(self) -> list[GrantEvent]:
        """Every event in append order."""

    @abstractmethod
    def _states_for(self, grant_ids: Collection[GrantId]) -> dict[GrantId, GrantState]:
        """Current state of those of ``grant_ids`` that the log knows."""

    @abstractmethod
    def _write(self, events: Sequence[GrantEvent]) -> None:
        """Durably append ``events``, all or none."""

    @abstractmethod
    def event_count(self) -> int:
        """How many events the log holds."""

    @abstractmethod
    def _subject_states_many(self, subject_ids: Sequence[str]) -> dict[SubjectId, list[GrantState]]:
        """Each subject's grants in their current state, in log order (only those subjects'
        events are read)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the backend's resources."""

    def __enter__(self) -> ConsentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, events: Sequence[GrantEvent]) -> None:
        """Append ``events`` atomically after checking them against the log.

        Refuses a second grant with a known id, a withdrawal of an unknown grant and a second
        withdrawal; nothing is written when any event is refused.
        """
        batch = list(events)
        if not batch:
            return
        states = self._states_for({e.grant_id for e in batch})
        for event in batch:
            apply_event(states, event)
        self._write(batch)
        logger.debug("appended %d consent events", len(batch))

    def grant(
        self,
        *,
        subject_id: str,
        institution: str,
        purpose: str,
        categories: Iterable[str],
        starts_at: datetime,
        expires_at: datetime | None,
        evidence_hash: str,
        channel: str,
        grant_id: str | None = None,
        recorded_at: datetime | None = None,
    ) -> Grant:
        """Record a new grant and return it.

        ``grant_id`` defaults to a random UUID and ``recorded_at`` (when the grant was given)
        to ``starts_at``.
        """
        grant = Grant(
            grant_id=GrantId(grant_id if grant_id is not None else str(uuid.uuid4())),
            subject_id=SubjectId(subject_id),
            institution=institution,
            purpose=purpose,
            categories=frozenset(categories),
            starts_at=starts_at,
            expires_at=expires_at,
            evidence_hash=evidence_hash,
            channel=channel,
        )
        at = grant.starts_at if recorded_at is None else recorded_at
        self.append([GrantEvent.granted(grant, at=at)])
        return grant

    def withdraw(self, grant_id: str, *, at: datetime) -> GrantEvent:
        """Withdraw ``grant_id`` with effect from ``at`` (not retroactive) in one call."""
        event = GrantEvent.withdrawn(grant_id, at=at)
        self.append([event])
        return event

    def states(self) -> dict[GrantId, GrantState]:
        """The current state of every grant (the fold of :meth:`events`)."""
        return current_grants(self.events())

    def state(self, grant_id: str) -> GrantState:
        """The current state of one grant; :class:`UnknownGrantError` if never recorded."""
        found = self._states_for({GrantId(grant_id)})
        if GrantId(grant_id) not in found:
            raise UnknownGrantError(grant_id)
        return found[GrantId(grant_id)]

    def subject_states(self, subject_id: str) -> list[GrantState]:
        """Every grant of one subject with its current state, in log order (reads only that
        subject's events: the per-request consent check)."""
        return self._subject_states_many([subject_id]).get(SubjectId(subject_id), [])

    def decide_many(
        self,
        subject_ids: Sequence[str],
        *,
        purpose: str,
        categories: Iterable[str],
        at: datetime,
        institution: str | None = None,
    ) -> dict[str, ConsentDecision]:
        """:meth:`decide` for many subjects, reading only their events, in batched queries
        (one per subject for a single-subject call: the scoring API's check)."""
        wanted = frozenset(categories)
        found = self._subject_states_many(subject_ids)
        return {
            s: decide(
                found.get(SubjectId(s), []),
                purpose=purpose,
                categories=wanted,
                at=at,
                institution=institution,
            )
            for s in dict.fromkeys(subject_ids)
        }

    def decide(
        self,
        subject_id: str,
        *,
        purpose: str,
        categories: Iterable[str],
        at: datetime,
        institution: str | None = None,
    ) -> ConsentDecision:
        """May ``subject_id``'s data in ``categories`` be used for ``purpose`` by
        ``institution`` at ``at``? Reads the log now: a withdrawal counts at once."""
        return decide(
            self.subject_states(subject_id),
            purpose=purpose,
            categories=categories,
            at=at,
            institution=institution,
        )

    def active_subjects(
        self,
        *,
        purpose: str,
        categories: Iterable[str],
        at: datetime,
        institution: str | None = None,
    ) -> frozenset[SubjectId]:
        """Subjects holding, at ``at``, a non-withdrawn grant for exactly ``purpose`` whose
        categories include all of ``categories`` and with ``starts_at <= at < expires_at``.

        ``institution`` restricts the answer to grants made to that institution.
        """
        return eligible_subjects(
            self.states(),
            purpose=purpose,
            categories=categories,
            at=at,
            institution=institution,
        )

    def exclusion_reasons(
        self,
        subject_ids: Iterable[str],
        *,
        purpose: str,
        categories: Iterable[str],
        at: datetime,
        institution: str | None = None,
    ) -> Counter[str]:
        """Counts by reason of the subjects in ``subject_ids`` that may not be used.

        Reasons: ``never_granted``, ``withdrawn``, ``expired``, ``not_yet_valid``,
        ``wrong_purpose``, ``categories_not_covered``. Eligible subjects are not counted.
        """
        return _exclusion_reasons(
            self.states(),
            subject_ids,
            purpose=purpose,
            categories=categories,
            at=at,
            institution=institution,
        )


class _UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC and hands them back aware (any dialect)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value, name="timestamp").replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_metadata = MetaData()
_events_table = Table(
    "consent_events",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("grant_id", String(64), nullable=False),
    Column("at", _UTCDateTime(), nullable=False),
    Column("subject_id", String(64)),
    Column("institution", String(128)),
    Column("purpose", String(32)),
    Column("categories", Text),
    Column("starts_at", _UTCDateTime()),
    Column("expires_at", _UTCDateTime()),
    Column("evidence_hash", String(128)),
    Column("channel", String(64)),
    UniqueConstraint("grant_id", "kind", name="uq_consent_events_grant_kind"),
    Index("ix_consent_events_subject", "subject_id"),
)

# The log is append-only in the database itself, not only in this code: SQLite triggers, and
# in PostgreSQL a trigger function that raises (TRUNCATE too, which skips row triggers).
for _operation in ("UPDATE", "DELETE"):
    sa_event.listen(
        _events_table,
        "after_create",
        DDL(  # type: ignore[no-untyped-call]  # SQLAlchemy leaves DDL.__init__ unannotated
            f"CREATE TRIGGER IF NOT EXISTS consent_events_no_{_operation.lower()} "
            f"BEFORE {_operation} ON consent_events "
            "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
for _statement in (
    "CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'consent_events is append-only' USING ERRCODE = 'restrict_violation'; "
    "END $$",
    "CREATE TRIGGER consent_events_append_only "
    "BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION consent_events_append_only()",
):
    sa_event.listen(
        _events_table,
        "after_create",
        DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )

# SQLite caps the number of bound parameters per statement; query ids in chunks below it.
_ID_CHUNK = 500


def _events_of_grants_of(subjects: Any) -> Any:
    """Every event of the grants given by ``subjects`` (granted rows name the subject,
    withdrawals only the grant), in log order: one statement, built once, so that the
    per-request consent check costs one indexed query and no SQL compilation."""
    granted = select(_events_table.c.grant_id).where(subjects, _events_table.c.kind == "granted")
    return (
        select(_events_table)
        .where(_events_table.c.grant_id.in_(granted.scalar_subquery()))
        .order_by(_events_table.c.seq)
    )


_ONE_SUBJECT_EVENTS = _events_of_grants_of(_events_table.c.subject_id == bindparam("subject"))
_SUBJECTS_EVENTS = _events_of_grants_of(
    _events_table.c.subject_id.in_(bindparam("subjects", expanding=True))
)


_GRANT_COLUMNS = (
    "subject_id",
    "institution",
    "purpose",
    "categories",
    "starts_at",
    "expires_at",
    "evidence_hash",
    "channel",
)


def _event_row(event: GrantEvent) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": event.kind, "grant_id": event.grant_id, "at": event.at}
    row.update(dict.fromkeys(_GRANT_COLUMNS))
    grant = event.grant
    if grant is not None:
        row.update(
            subject_id=grant.subject_id,
            institution=grant.institution,
            purpose=grant.purpose,
            categories=json.dumps(sorted(grant.categories)),
            starts_at=grant.starts_at,
            expires_at=grant.expires_at,
            evidence_hash=grant.evidence_hash,
            channel=grant.channel,
        )
    return row


def _row_event(row: Any) -> GrantEvent:
    grant_id = GrantId(row.grant_id)
    if row.kind == "withdrawn":
        return GrantEvent.withdrawn(grant_id, at=row.at)
    grant = Grant(
        grant_id=grant_id,
        subject_id=SubjectId(row.subject_id),
        institution=row.institution,
        purpose=row.purpose,
        categories=frozenset(json.loads(row.categories)),
        starts_at=row.starts_at,
        expires_at=row.expires_at,
        evidence_hash=row.evidence_hash,
        channel=row.channel,
    )
    return GrantEvent.granted(grant, at=row.at)


class SQLAlchemyConsentStore(ConsentStore):
    """Consent log in a SQL database reached through SQLAlchemy (SQLite, PostgreSQL)."""

    reads_inline = False

    def __init__(self, url_or_engine: str | Engine) -> None:
        self._engine = (
            create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        try:
            _metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise ConsentError(f"cannot open consent database ({type(exc).__name__})") from exc

    def close(self) -> None:
        """Dispose of the connection pool."""
        self._engine.dispose()

    def events(self) -> list[GrantEvent]:
        query = select(_events_table).order_by(_events_table.c.seq)
        with self._engine.connect() as conn:
            return [_row_event(row) for row in conn.execute(query)]

    def _states_for(self, grant_ids: Collection[GrantId]) -> dict[GrantId, GrantState]:
        ids = sorted(grant_ids)
        rows: list[Any] = []
        with self._engine.connect() as conn:
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                query = (
                    select(_events_table)
                    .where(_events_table.c.grant_id.in_(chunk))
                    .order_by(_events_table.c.seq)
                )
                rows.extend(conn.execute(query))
        rows.sort(key=lambda row: row.seq)
        return current_grants(_row_event(row) for row in rows)

    def event_count(self) -> int:
        with self._engine.connect() as conn:
            query = select(func.count()).select_from(_events_table)
            return int(conn.execute(query).scalar_one())

    def _subject_states_many(self, subject_ids: Sequence[str]) -> dict[SubjectId, list[GrantState]]:
        subjects = sorted(set(subject_ids))
        rows: list[Any] = []
        try:
            with self._engine.connect() as conn:
                if len(subjects) == 1:
                    rows.extend(conn.execute(_ONE_SUBJECT_EVENTS, {"subject": subjects[0]}))
                else:
                    for start in range(0, len(subjects), _ID_CHUNK):
                        chunk = subjects[start : start + _ID_CHUNK]
                        rows.extend(conn.execute(_SUBJECTS_EVENTS, {"subjects": chunk}))
        except SQLAlchemyError as exc:  # the caller refuses (fails closed), never passes
            raise ConsentError(f"cannot read the consent database ({type(exc).__name__})") from exc
        rows.sort(key=lambda row: row.seq)
        return states_by_subject(current_grants(_row_event(row) for row in rows))

    def _write(self, events: Sequence[GrantEvent]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(_events_table.insert(), [_event_row(e) for e in events])
        except IntegrityError as exc:
            raise InvalidGrantError(
                "consent log refused the append (a grant id recorded concurrently?)"
            ) from exc
        except SQLAlchemyError as exc:
            raise ConsentError(f"cannot write to consent database ({type(exc).__name__})") from exc


class SQLiteConsentStore(SQLAlchemyConsentStore):
    """The embedded default: one SQLite file, created on first use."""

    reads_inline = True

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(sqlite_engine(self.path))
