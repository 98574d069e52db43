"""The evidence ledger: an append-only Merkle log persisted through SQLAlchemy.

Each entry is a canonical JSON body (:mod:`consent.ledger.entries` builds them: hashes and
pseudonyms only). The database keeps the bodies and the hash of every perfect aligned subtree
(level 0: the RFC 6962 leaf hashes), written in the same transaction as the entry, so a crash
loses at most the append in flight and any root or proof costs one batched lookup. Signed tree
heads (:mod:`consent.ledger.signing`) are stored too. :meth:`EvidenceLog.verify` recomputes
everything from the bodies: a changed, removed or reordered entry, node or head is found.

The one sanctioned removal is a retention purge (:mod:`consent.ledger.retention`): the body
of an entry past its retention period is deleted, its leaf hash stays, so the tree, every
signed head and every other entry's proofs are unchanged. The purge is itself an entry of
the log naming what it removed, and the database refuses to delete a body that no recorded
purge covers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DDL,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    func,
    or_,
    select,
)
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from consent.errors import LedgerError, PurgedEvidenceError, UnknownEvidenceError
from consent.ledger import merkle
from consent.ledger.signing import LedgerSigner, TreeHead, verify_head
from consent.sqlite import sqlite_engine

__all__ = ["Entry", "EvidenceLog", "VerifyReport", "canonical_json", "evidence_id"]

logger = logging.getLogger(__name__)

_metadata = MetaData()
_entries = Table(
    "ledger_entries",
    _metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_ledger_entries_kind", "kind"),
)
_nodes = Table(
    "ledger_nodes",
    _metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
_heads = Table(
    "ledger_heads",
    _metadata,
    Column("tree_size", Integer, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("timestamp", String(40), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)
#: Entries whose body a retention purge removed, and the purge entry that did.
_purges = Table(
    "ledger_purges",
    _metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("purge_entry", Integer, nullable=False),
)
# Append-only in the database itself, not only in this code: SQLite triggers, and in
# PostgreSQL a trigger function that raises (TRUNCATE too, which skips row triggers);
# verify() still catches a change made by anyone who drops them. The one exception: an
# entry's body may be deleted once a purge of it is recorded (the same transaction).
_PURGED_ONLY = "EXISTS (SELECT 1 FROM ledger_purges WHERE ledger_purges.idx = OLD.idx)"
_SQLITE_ENTRY_DELETE = (
    "CREATE TRIGGER IF NOT EXISTS ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    f"WHEN NOT {_PURGED_ONLY} "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only (bodies go by purge only)'); END"
)
_PG_ENTRY_DELETE = (
    "CREATE OR REPLACE FUNCTION ledger_entries_purged_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"IF NOT {_PURGED_ONLY} THEN "
    "RAISE EXCEPTION 'ledger_entries is append-only (bodies go by purge only)' "
    "USING ERRCODE = 'restrict_violation'; END IF; RETURN OLD; END $$",
    "CREATE OR REPLACE TRIGGER ledger_entries_purged_only BEFORE DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entries_purged_only()",
)
for _table in (_entries, _nodes, _heads, _purges):
    for _operation in ("UPDATE", "DELETE"):
        if _table is _entries and _operation == "DELETE":
            sa_event.listen(
                _table,
                "after_create",
                DDL(_SQLITE_ENTRY_DELETE).execute_if(dialect="sqlite"),  # type: ignore[no-untyped-call]
            )
            continue
        sa_event.listen(
            _table,
            "after_create",
            DDL(  # type: ignore[no-untyped-call]  # SQLAlchemy leaves DDL.__init__ unannotated
                f"CREATE TRIGGER IF NOT EXISTS {_table.name}_no_{_operation.lower()} "
                f"BEFORE {_operation} ON {_table.name} "
                f"BEGIN SELECT RAISE(ABORT, '{_table.name} is append-only'); END"
            ).execute_if(dialect="sqlite"),
        )
    for _statement in (
        f"CREATE OR REPLACE FUNCTION {_table.name}_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION '{_table.name} is append-only' USING ERRCODE = 'restrict_violation'; "
        "END $$",
        f"CREATE TRIGGER {_table.name}_append_only "
        f"BEFORE UPDATE OR {'' if _table is _entries else 'DELETE OR '}TRUNCATE "
        f"ON {_table.name} FOR EACH STATEMENT EXECUTE FUNCTION {_table.name}_append_only()",
        *(_PG_ENTRY_DELETE if _table is _entries else ()),
    ):
        sa_event.listen(
            _table,
            "after_create",
            DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
        )

#: Keys per IN query (SQLite caps bound parameters per statement).
_CHUNK = 400
#: The kind of a retention purge's own entry (:mod:`consent.ledger.retention`).
PURGE_KIND = "retention_purge"


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """The bytes an entry's leaf hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def evidence_id(index: int, leaf: bytes) -> str:
    """``ev-<index>-<first 16 hex digits of the leaf hash>``: finds and checks an entry."""
    return f"ev-{index}-{leaf.hex()[:16]}"


def _parse_evidence_id(value: str) -> tuple[int, str]:
    parts = value.split("-")
    if len(parts) != 3 or parts[0] != "ev" or not parts[1].isdigit() or len(parts[2]) != 16:
        raise UnknownEvidenceError(
            f"{value!r} is not an evidence id (expected ev-<index>-<16 hex digits>)"
        )
    return int(parts[1]), parts[2]


@dataclass(frozen=True)
class Entry:
    """One stored entry: its position, body and leaf hash."""

    index: int
    body: dict[str, Any]
    leaf_hash: bytes

    @property
    def evidence_id(self) -> str:
        return evidence_id(self.index, self.leaf_hash)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`EvidenceLog.verify` found; ``ok`` only if ``problems`` is empty."""

    entries: int
    heads: int
    root_hash: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class EvidenceLog:
    """The append-only Merkle log in a SQL database, with its signing key.

    ``signer`` may be ``None`` for a read-only verifier; appends and heads then fail.
    """

    def __init__(self, url_or_engine: str | Engine, *, signer: LedgerSigner | None) -> None:
        self._engine = (
            create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        self._signer = signer
        try:
            _metadata.create_all(self._engine)
            _upgrade_delete_guard(self._engine)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the ledger database ({type(exc).__name__})") from exc
        self._size = 0
        self._peaks: dict[int, bytes] = {}
        self._lock = threading.Lock()  # one append at a time per process (others: retried)
        self._reload()

    @classmethod
    def in_folder(cls, folder: Path | str, *, read_only: bool = False) -> EvidenceLog:
        """The embedded default: ``ledger.db`` (SQLite) and the signing key in ``folder``."""
        folder = Path(folder)
        if read_only and not (folder / "ledger.db").exists():
            raise LedgerError(f"no ledger in {folder} (expected {folder / 'ledger.db'})")
        folder.mkdir(parents=True, exist_ok=True)
        signer = None if read_only else LedgerSigner.in_folder(folder)
        return cls(sqlite_engine(folder / "ledger.db"), signer=signer)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- size, roots and proofs ------------------------------------------------------

    @property
    def size(self) -> int:
        """Entries appended so far (by this or any other writer, as of the last operation)."""
        return self._size

    def _reload(self) -> None:
        with self._engine.connect() as conn:
            size = _leaf_count(conn)
            keys = set(merkle.perfect_ranges(0, size))
            self._peaks = {level: h for (level, _), h in self._fetch(conn, keys).items()}
        self._size = size

    def _fetch(self, conn: Any, keys: Iterable[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        # ``(level = ? AND idx IN (...)) OR ...``, one term per level: SQLite and PostgreSQL
        # both answer each term from the primary key, where SQLite scans the whole table for
        # a row-value ``(level, idx) IN (VALUES ...)`` list.
        wanted = set(keys)
        ordered = sorted(wanted)
        found: dict[merkle.NodeKey, bytes] = {}
        for start in range(0, len(ordered), _CHUNK):
            by_level: dict[int, list[int]] = {}
            for level, index in ordered[start : start + _CHUNK]:
                by_level.setdefault(level, []).append(index)
            query = select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(
                or_(
                    *(
                        and_(_nodes.c.level == level, _nodes.c.idx.in_(indexes))
                        for level, indexes in by_level.items()
                    )
                )
            )
            found.update({(r.level, r.idx): bytes(r.hash) for r in conn.execute(query)})
        missing = wanted - set(found)
        if missing:
            raise LedgerError(f"the ledger is missing {len(missing)} tree node(s); run verify")
        return found

    def _hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        with self._engine.connect() as conn:
            return merkle.hashes_for(ranges, lambda keys: self._fetch(conn, keys))

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` entries (default: all)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise LedgerError(f"tree size must be in [0, {self._size}], got {size}")
        if size == self._size:
            return merkle.range_hash(0, size, _peak_nodes(size, self._peaks))
        return self._hashes([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size`` entries."""
        if not 0 < size <= self._size:
            raise LedgerError(f"tree size must be in [1, {self._size}], got {size}")
        return self._hashes(merkle.inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that the tree of ``old_size`` entries is a prefix of that of ``new_size``."""
        if not 0 <= old_size <= new_size <= self._size:
            raise LedgerError(
                f"need 0 <= old_size <= new_size <= {self._size}, got {old_size}, {new_size}"
            )
        return self._hashes(merkle.consistency_ranges(old_size, new_size))

    # --- appends ----------------------------------------------------------------------

    def append(self, body: Mapping[str, Any]) -> Entry:
        """Append one entry, durably (its own transaction)."""
        return self.append_many([body])[0]

    def append_many(self, bodies: Sequence[Mapping[str, Any]]) -> list[Entry]:
        """Append entries in order, all or none, in one transaction."""
        if self._signer is None:
            raise LedgerError("this ledger was opened read-only")
        return self._append_retrying(bodies)

    def _append_retrying(
        self,
        bodies: Sequence[Mapping[str, Any]],
        then: Callable[[Any, list[Entry]], None] | None = None,
    ) -> list[Entry]:
        for attempt in range(5):
            with self._lock:
                try:
                    return self._append(bodies, then)
                except IntegrityError:
                    # Another process appended first: catch up with its entries, try again.
                    logger.info("ledger append raced another writer (attempt %d)", attempt)
                    self._reload()
        raise LedgerError("ledger append kept racing other writers; try again")

    def _append(
        self,
        bodies: Sequence[Mapping[str, Any]],
        then: Callable[[Any, list[Entry]], None] | None = None,
    ) -> list[Entry]:
        size, peaks = self._size, dict(self._peaks)
        entry_rows, entries = [], []
        nodes: dict[merkle.NodeKey, bytes] = {}
        for body in bodies:
            if not isinstance(body.get("kind"), str) or not body["kind"]:
                raise LedgerError("a ledger entry needs a non-empty string 'kind'")
            data = canonical_json(body)
            leaf = merkle.leaf_hash(data)
            entry_rows.append({"idx": size, "kind": body["kind"], "body": data.decode()})
            entries.append(Entry(index=size, body=json.loads(data), leaf_hash=leaf))
            size = _grow(size, peaks, leaf, nodes)
        node_rows = [{"level": lv, "idx": i, "hash": h} for (lv, i), h in nodes.items()]
        try:
            with self._engine.begin() as conn:
                conn.execute(_entries.insert(), entry_rows)
                conn.execute(_nodes.insert(), node_rows)
                if then is not None:
                    then(conn, entries)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot write to the ledger ({type(exc).__name__})") from exc
        self._size, self._peaks = size, peaks
        return entries

    def purge(self, indexes: Sequence[int], reason: Mapping[str, Any]) -> Entry | None:
        """Delete the bodies of entries ``indexes`` (their leaf hashes stay) and append, in
        the same transaction, a ``retention_purge`` entry: ``reason`` (when, under which
        rule) with the count and ranges of what went. That entry, or ``None`` if there was
        nothing to purge. Callers choose what may go: :mod:`consent.ledger.retention`."""
        if self._signer is None:
            raise LedgerError("this ledger was opened read-only")
        wanted = sorted(set(indexes))
        if not wanted:
            return None
        if wanted[0] < 0 or wanted[-1] >= self._size:
            raise LedgerError(f"purge indexes must be in [0, {self._size})")
        record = {**reason, "kind": PURGE_KIND, "count": len(wanted), "ranges": _runs(wanted)}

        def remove(conn: Any, entries: list[Entry]) -> None:
            (entry,) = entries
            rows = [{"idx": i, "purge_entry": entry.index} for i in wanted]
            conn.execute(_purges.insert(), rows)
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                conn.execute(_entries.delete().where(_entries.c.idx.in_(chunk)))

        return self._append_retrying([record], then=remove)[0]

    # --- reads ------------------------------------------------------------------------

    def entry(self, index: int) -> Entry:
        with self._engine.connect() as conn:
            row = conn.execute(select(_entries).where(_entries.c.idx == index)).first()
            if row is None:
                by = conn.execute(
                    select(_purges.c.purge_entry).where(_purges.c.idx == index)
                ).scalar_one_or_none()
                if by is not None:
                    raise PurgedEvidenceError(
                        f"entry {index} was purged at the end of its retention period "
                        f"(purge record: entry {by}); its leaf hash stays in the tree"
                    )
                raise UnknownEvidenceError(f"the ledger has no entry {index}")
            (leaf,) = self._fetch(conn, [(0, index)]).values()
        return Entry(index=index, body=json.loads(row.body), leaf_hash=leaf)

    def find(self, evidence: str) -> Entry:
        """The entry an evidence id names; its hash prefix must match."""
        index, prefix = _parse_evidence_id(evidence)
        try:
            entry = self.entry(index)
        except PurgedEvidenceError:
            with self._engine.connect() as conn:
                (leaf,) = self._fetch(conn, [(0, index)]).values()
            if leaf.hex()[:16] != prefix:
                raise UnknownEvidenceError(f"{evidence} does not match entry {index}") from None
            raise
        if entry.leaf_hash.hex()[:16] != prefix:
            raise UnknownEvidenceError(f"{evidence} does not match entry {index} of this ledger")
        return entry

    def entries(self, start: int = 0, stop: int | None = None) -> list[Entry]:
        stop = self._size if stop is None else stop
        query = (
            select(_entries.c.idx, _entries.c.body, _nodes.c.hash)
            .join(_nodes, (_nodes.c.level == 0) & (_nodes.c.idx == _entries.c.idx))
            .where(_entries.c.idx >= start, _entries.c.idx < stop)
            .order_by(_entries.c.idx)
        )
        with self._engine.connect() as conn:
            return [
                Entry(index=r.idx, body=json.loads(r.body), leaf_hash=bytes(r.hash))
                for r in conn.execute(query)
            ]

    def count_of_kind(self, kind: str) -> int:
        query = select(func.count()).select_from(_entries).where(_entries.c.kind == kind)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def indexed_bodies(
        self, kinds: Sequence[str], *, batch: int = 20_000
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, body)`` of every stored entry of ``kinds``, in log order, read in
        batches (a scan of a large ledger holds one batch at a time)."""
        after = -1
        while True:
            query = (
                select(_entries.c.idx, _entries.c.body)
                .where(_entries.c.kind.in_(list(kinds)), _entries.c.idx > after)
                .order_by(_entries.c.idx)
                .limit(batch)
            )
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield row.idx, json.loads(row.body)
            after = rows[-1].idx

    def bodies_of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The bodies of every entry of ``kind``, in log order."""
        query = select(_entries.c.body).where(_entries.c.kind == kind).order_by(_entries.c.idx)
        with self._engine.connect() as conn:
            return [json.loads(r.body) for r in conn.execute(query)]

    # --- tree heads -------------------------------------------------------------------

    def sign_head(self, *, at: datetime | None = None) -> TreeHead:
        """Sign and store the head of the log as it is now."""
        if self._signer is None:
            raise LedgerError("this ledger was opened read-only")
        self._reload()
        at = (at or datetime.now(UTC)).astimezone(UTC)
        head = self._signer.sign(
            tree_size=self._size,
            root_hash=self.root().hex(),
            timestamp=at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(_heads.insert(), [head.to_dict()])
        except IntegrityError:
            return self.head(self._size)  # a head of this size exists: keep the first
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot store the tree head ({type(exc).__name__})") from exc
        return head

    def heads(self) -> list[TreeHead]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(_heads).order_by(_heads.c.tree_size))
            return [TreeHead.from_dict(dict(r._mapping)) for r in rows]

    def head(self, tree_size: int) -> TreeHead:
        for head in self.heads():
            if head.tree_size == tree_size:
                return head
        raise LedgerError(f"no signed tree head of size {tree_size}")

    def head_covering(self, index: int) -> TreeHead:
        """The smallest signed head that includes entry ``index``, signing one if none does."""
        for head in self.heads():
            if head.tree_size > index:
                return head
        return self.sign_head()

    # --- verification -----------------------------------------------------------------

    def verify(self, *, public_key: str | None = None, batch: int = 20_000) -> VerifyReport:
        """Recompute every leaf, node and root from the bodies; check every signed head.

        ``public_key`` (hex) is the ledger's published key; without it heads are checked
        against this ledger's own signer (or, opened read-only, against their own key field,
        which proves integrity but not authorship).
        """
        key = public_key or (self._signer.public_key if self._signer else None)
        heads = {h.tree_size: h for h in self.heads()}
        problems: list[str] = []
        roots: dict[int, bytes] = {}
        size, peaks = 0, dict[int, bytes]()
        purge_records: dict[int, dict[str, Any]] = {}
        with self._engine.connect() as conn:
            count = _leaf_count(conn)
            purges = {r.idx: r.purge_entry for r in conn.execute(select(_purges))}
            beyond = conn.execute(
                select(func.count()).select_from(_entries).where(_entries.c.idx >= count)
            ).scalar_one()
            if beyond:
                problems.append(f"{beyond} entries lie beyond the tree's {count} leaves")
            for start in range(0, count, batch):
                stop = min(start + batch, count)
                rows = {
                    r.idx: r
                    for r in conn.execute(
                        select(_entries.c.idx, _entries.c.kind, _entries.c.body).where(
                            _entries.c.idx >= start, _entries.c.idx < stop
                        )
                    )
                }
                stored = _stored_nodes(conn, start, stop)
                computed: dict[merkle.NodeKey, bytes] = {}
                for index in range(start, stop):
                    row = rows.get(index)
                    if row is None:
                        if index not in purges or (0, index) not in stored:
                            problems.append(f"entry {index} is missing (and no purge covers it)")
                            return VerifyReport(count, len(heads), "", tuple(problems))
                        leaf = stored[(0, index)]  # purged: the leaf hash is what remains
                    else:
                        body = json.loads(row.body)
                        if (
                            canonical_json(body).decode() != row.body
                            or body.get("kind") != row.kind
                        ):
                            problems.append(f"entry {index} is not in canonical form")
                        if row.kind == PURGE_KIND:
                            purge_records[index] = body
                        if index in purges:
                            problems.append(f"entry {index} is recorded as purged but is here")
                        leaf = merkle.leaf_hash(row.body.encode())
                    size = _grow(size, peaks, leaf, computed)
                    if size in heads:
                        roots[size] = merkle.range_hash(0, size, _peak_nodes(size, peaks))
                bad = sorted(k for k, h in computed.items() if stored.get(k) != h)
                if bad:
                    level, index = bad[0]
                    problems.append(
                        f"{len(bad)} stored tree node(s) differ from the entries, first at "
                        f"level {level} index {index} (entry {index << level} onwards)"
                    )
        problems.extend(_purge_problems(purges, purge_records))
        for tree_size, head in sorted(heads.items()):
            if tree_size > size:
                problems.append(f"head of size {tree_size} is beyond the log's {size} entries")
            elif tree_size == 0 and head.root_hash != merkle.EMPTY_ROOT.hex():
                problems.append("head of size 0 does not have the empty root")
            elif tree_size and roots.get(tree_size, b"").hex() != head.root_hash:
                problems.append(f"head of size {tree_size} does not match the entries' root")
            if not verify_head(head, public_key=key):
                problems.append(f"head of size {tree_size} has an invalid signature")
        root = merkle.range_hash(0, size, _peak_nodes(size, peaks))
        return VerifyReport(size, len(heads), root.hex(), tuple(problems))


def _runs(indexes: Sequence[int]) -> list[list[int]]:
    """Sorted indexes as inclusive ``[first, last]`` runs."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return runs


def _purge_problems(
    purges: Mapping[int, int], records: Mapping[int, Mapping[str, Any]]
) -> list[str]:
    """Every purged entry must be named by the purge record the database says removed it,
    a record later in the log than the entry."""
    named: dict[int, set[int]] = {}
    for at, record in records.items():
        covered: set[int] = set()
        try:
            for first, last in record.get("ranges", []):
                covered.update(range(int(first), int(last) + 1))
        except (TypeError, ValueError):
            return [f"purge record {at} has malformed ranges"]
        named[at] = covered
    problems = []
    for index, by in sorted(purges.items()):
        if by not in named or index not in named[by] or by <= index:
            problems.append(f"entry {index} was removed without a purge record naming it")
            break
    for at, covered in named.items():
        if {i for i, by in purges.items() if by == at} != covered:
            problems.append(f"purge record {at} names other entries than were removed")
    return problems


def _leaf_count(conn: Any) -> int:
    """Entries in the log: leaves of the tree (a purged entry keeps its leaf)."""
    last = conn.execute(select(func.max(_nodes.c.idx)).where(_nodes.c.level == 0)).scalar()
    return 0 if last is None else int(last) + 1


def _upgrade_delete_guard(engine: Engine) -> None:
    """Ledgers made before retention purges refuse every delete of a body: let the ones a
    recorded purge covers through (a no-op on ledgers made since)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                "AND name = 'ledger_entries_no_delete'"
            ).scalar()
            if sql is not None and "ledger_purges" not in sql:
                conn.exec_driver_sql("DROP TRIGGER ledger_entries_no_delete")
                conn.exec_driver_sql(_SQLITE_ENTRY_DELETE)
        elif engine.dialect.name == "postgresql":
            found = conn.exec_driver_sql(
                "SELECT 1 FROM pg_trigger WHERE tgname = 'ledger_entries_purged_only'"
            ).scalar()
            if found is None:
                conn.exec_driver_sql(
                    "CREATE OR REPLACE TRIGGER ledger_entries_append_only "
                    "BEFORE UPDATE OR TRUNCATE ON ledger_entries "
                    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()"
                )
                for statement in _PG_ENTRY_DELETE:
                    conn.exec_driver_sql(statement)


def _grow(
    size: int, peaks: dict[int, bytes], leaf: bytes, written: dict[merkle.NodeKey, bytes]
) -> int:
    """Add leaf ``size`` to the peaks (one per set bit of the size), recording every node it
    completes in ``written``; return the new size."""
    value, level = leaf, 0
    written[(0, size)] = leaf
    while (size >> level) & 1:
        value = merkle.node_hash(peaks.pop(level), value)
        level += 1
        written[(level, size >> level)] = value
    peaks[level] = value
    return size + 1


def _peak_nodes(size: int, peaks: Mapping[int, bytes]) -> dict[merkle.NodeKey, bytes]:
    """The peaks as node keys: the peak at level L is the perfect subtree ending at ``size``'s
    L-th set bit, index ``(size >> L) - 1``."""
    return {(level, (size >> level) - 1): h for level, h in peaks.items()}


def _stored_nodes(conn: Any, start: int, stop: int) -> dict[merkle.NodeKey, bytes]:
    """Stored nodes completed by appending leaves ``start`` to ``stop - 1``: at level L, node
    j is completed by leaf ``(j + 1) * 2**L - 1``."""
    found: dict[merkle.NodeKey, bytes] = {}
    level = 0
    while (1 << level) <= stop:
        first = -(-(start + 1) // (1 << level)) - 1
        last = stop // (1 << level) - 1
        if last >= first:
            query = select(_nodes.c.idx, _nodes.c.hash).where(
                _nodes.c.level == level, _nodes.c.idx >= first, _nodes.c.idx <= last
            )
            found.update({(level, r.idx): bytes(r.hash) for r in conn.execute(query)})
        level += 1
    return found
