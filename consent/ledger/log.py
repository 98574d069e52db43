"""The evidence ledger: an append-only Merkle log persisted through SQLAlchemy.

Each entry is a canonical JSON body (:mod:`consent.ledger.entries` builds them: hashes and
pseudonyms only). The database keeps the bodies and the hash of every perfect aligned subtree
(level 0: the RFC 6962 leaf hashes), written in the same transaction as the entry, so a crash
loses at most the append in flight and any root or proof costs one batched lookup. Signed tree
heads (:mod:`consent.ledger.signing`) are stored too. :meth:`EvidenceLog.verify` recomputes
everything from the bodies: a changed, removed or reordered entry, node or head is found.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
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

from consent.errors import LedgerError, UnknownEvidenceError
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
# Append-only in the database itself, not only in this code: SQLite triggers, and in
# PostgreSQL a trigger function that raises (TRUNCATE too, which skips row triggers);
# verify() still catches a change made by anyone who drops them.
for _table in (_entries, _nodes, _heads):
    for _operation in ("UPDATE", "DELETE"):
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
        f"BEFORE UPDATE OR DELETE OR TRUNCATE ON {_table.name} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_table.name}_append_only()",
    ):
        sa_event.listen(
            _table,
            "after_create",
            DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
        )

#: Keys per IN query (SQLite caps bound parameters per statement).
_CHUNK = 400


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
            size = conn.execute(select(func.count()).select_from(_entries)).scalar_one()
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
        for attempt in range(5):
            with self._lock:
                try:
                    return self._append(bodies)
                except IntegrityError:
                    # Another process appended first: catch up with its entries, try again.
                    logger.info("ledger append raced another writer (attempt %d)", attempt)
                    self._reload()
        raise LedgerError("ledger append kept racing other writers; try again")

    def _append(self, bodies: Sequence[Mapping[str, Any]]) -> list[Entry]:
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
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot write to the ledger ({type(exc).__name__})") from exc
        self._size, self._peaks = size, peaks
        return entries

    # --- reads ------------------------------------------------------------------------

    def entry(self, index: int) -> Entry:
        with self._engine.connect() as conn:
            row = conn.execute(select(_entries).where(_entries.c.idx == index)).first()
            if row is None:
                raise UnknownEvidenceError(f"the ledger has no entry {index}")
            (leaf,) = self._fetch(conn, [(0, index)]).values()
        return Entry(index=index, body=json.loads(row.body), leaf_hash=leaf)

    def find(self, evidence: str) -> Entry:
        """The entry an evidence id names; its hash prefix must match."""
        index, prefix = _parse_evidence_id(evidence)
        entry = self.entry(index)
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
        with self._engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(_entries)).scalar_one()
            for start in range(0, count, batch):
                rows = conn.execute(
                    select(_entries.c.idx, _entries.c.kind, _entries.c.body)
                    .where(_entries.c.idx >= start, _entries.c.idx < start + batch)
                    .order_by(_entries.c.idx)
                ).all()
                computed: dict[merkle.NodeKey, bytes] = {}
                for row in rows:
                    if row.idx != size:
                        problems.append(f"entry {size} is missing (the next stored is {row.idx})")
                        return VerifyReport(count, len(heads), "", tuple(problems))
                    body = json.loads(row.body)
                    if canonical_json(body).decode() != row.body or body.get("kind") != row.kind:
                        problems.append(f"entry {size} is not in canonical form")
                    size = _grow(size, peaks, merkle.leaf_hash(row.body.encode()), computed)
                    if size in heads:
                        roots[size] = merkle.range_hash(0, size, _peak_nodes(size, peaks))
                stored = _stored_nodes(conn, start, start + len(rows))
                bad = sorted(k for k, h in computed.items() if stored.get(k) != h)
                if bad:
                    level, index = bad[0]
                    problems.append(
                        f"{len(bad)} stored tree node(s) differ from the entries, first at "
                        f"level {level} index {index} (entry {index << level} onwards)"
                    )
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
