"""The node's raw store: every kind's inbox subfolder into one SQLite database, and back out
as typed tables.

One :class:`~participants.inbox.Inbox` per kind (``<inbox>/<kind>/*.csv|*.parquet`` into
table ``<kind>`` of the node's ``raw.db``); entries of the inbox that are not a kind's
folder are refused by name, so a misplaced export is noticed rather than silently skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from models.errors import did_you_mean

from ..inbox import Inbox, IngestReport
from .kinds import RAW_KINDS, RawKind
from .values import typed_table, value_check

__all__ = ["RawStore", "StoreReport", "StoredTables", "fold_versions", "open_store"]


@dataclass
class StoreReport:
    """What one pass did to the store: each kind's inbox report, and misplaced entries."""

    kinds: dict[str, IngestReport] = field(default_factory=dict)
    misplaced: dict[str, str] = field(default_factory=dict)  # inbox entry -> why refused

    def refused(self) -> dict[str, str]:
        """Every refused file or entry, as ``kind/file`` (or the entry's name) -> reason."""
        out = dict(self.misplaced)
        for kind, report in self.kinds.items():
            out.update({f"{kind}/{name}": why for name, why in report.refused.items()})
        return dict(sorted(out.items()))

    @property
    def rows_new(self) -> int:
        return sum(sum(r.ingested.values()) for r in self.kinds.values())


@dataclass(frozen=True)
class StoredTables:
    """The typed tables of every kind, and the rows stored per kind (versions counted)."""

    tables: dict[str, pa.Table]
    rows: dict[str, int]


class RawStore:
    """The node's raw rows: ingested from ``inbox``, kept in ``database``."""

    def __init__(self, inbox: Path, database: Path, *, tz: str, settle_s: float) -> None:
        self.inbox = Path(inbox)
        self.tz = tz
        database.parent.mkdir(parents=True, exist_ok=True)
        self._inboxes = {
            kind.name: Inbox(
                self.inbox / kind.name,
                database,
                kind=kind.name,
                columns=kind.column_names,
                key=kind.key,
                optional=kind.optional,
                check=value_check(kind, tz=tz),
                settle_s=settle_s,
            )
            for kind in RAW_KINDS
        }
        self.settle_s = settle_s

    def close(self) -> None:
        for inbox in self._inboxes.values():
            inbox.close()

    def ingest(self) -> StoreReport:
        """One pass over every kind's folder.

        A file must look the same twice, ``settle_s`` apart, before it is read, so a pass
        that starts fresh looks once, waits ``settle_s`` and then ingests.
        """
        if self.settle_s > 0:
            for inbox in self._inboxes.values():
                inbox.ingest()  # first sighting of every file: nothing is read yet
            time.sleep(self.settle_s)
        report = StoreReport(misplaced=self._misplaced())
        for name, inbox in self._inboxes.items():
            report.kinds[name] = inbox.ingest()
        return report

    def read(self) -> StoredTables:
        """Every kind's stored rows, typed; document versions folded into one row each."""
        tables, rows = {}, {}
        for kind in RAW_KINDS:
            text = self._inboxes[kind.name].rows()
            rows[kind.name] = len(text)
            table = typed_table(kind, text, tz=self.tz)
            tables[kind.name] = fold_versions(kind, table) if kind.versions else _once(kind, table)
        return StoredTables(tables=tables, rows=rows)

    def _misplaced(self) -> dict[str, str]:
        if not self.inbox.is_dir():
            return {}
        kinds = [kind.name for kind in RAW_KINDS]
        out = {}
        for entry in sorted(self.inbox.iterdir()):
            if entry.name.startswith(".") or entry.name in kinds:
                continue
            if entry.is_dir():
                hint = did_you_mean(entry.name, kinds) or f" (kinds: {', '.join(kinds)})"
                out[entry.name] = f"not a raw kind's folder{hint}: rename it"
            else:
                out[entry.name] = "a file outside a kind's folder: move it into <inbox>/<kind>/"
        return out


def _once(kind: RawKind, table: pa.Table) -> pa.Table:
    """Each reading once, however its key was spelled (``...T23:00+08:00`` and ``...T15:00Z``
    are one reading; the inbox deduplicates the text, this the values)."""
    repeated = table.select(list(kind.key)).to_pandas().duplicated().to_numpy()
    return table.filter(pa.array(~repeated)) if repeated.any() else table


def fold_versions(kind: RawKind, table: pa.Table) -> pa.Table:
    """One row per document: each date the latest any version recorded (a milestone, once
    reached, stays reached), the other fields from the version with most milestones."""
    keys = list(kind.versions)
    dates = [
        c.name
        for c in kind.columns
        if c.type == "date" and c.optional and c.name in table.column_names
    ]
    others = [name for name in table.column_names if name not in keys and name not in dates]
    filled = pa.array([0] * table.num_rows, pa.int64())
    for name in dates:
        filled = pc.add(filled, pc.cast(pc.is_valid(table[name]), pa.int64()))
    ranked = table.append_column("_filled", filled).append_column(
        "_order", pa.array(range(table.num_rows), pa.int64())
    )
    ranked = ranked.sort_by(
        [*((k, "ascending") for k in keys), ("_filled", "ascending"), ("_order", "ascending")]
    )
    folded = ranked.group_by(keys, use_threads=False).aggregate(
        [*((name, "last") for name in others), *((name, "max") for name in dates)]
    )
    renamed = {f"{name}_last": name for name in others} | {f"{name}_max": name for name in dates}
    folded = folded.rename_columns([renamed.get(n, n) for n in folded.column_names])
    return folded.select(table.column_names).sort_by([(k, "ascending") for k in keys])


@contextmanager
def open_store(inbox: Path, database: Path, *, tz: str, settle_s: float) -> Iterator[RawStore]:
    """A :class:`RawStore`, closed afterwards."""
    store = RawStore(inbox, database, tz=tz, settle_s=settle_s)
    try:
        yield store
    finally:
        store.close()
