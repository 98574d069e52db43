"""A factory node's inbox: raw readings dropped as files, ingested once each, incrementally.

The node's systems (meter gateway, MES, ERP exports) drop CSV or Parquet files into a
folder. On each :meth:`Inbox.ingest`:

- a file still being written is left alone: names starting with ``.`` or ending in
  ``.partial`` / ``.tmp`` are never read, and a file whose size or modification time changed
  within the last ``settle_s`` seconds waits for the next pass;
- a file already ingested with the same content changes nothing (idempotent);
- a CSV file that grew by appended rows is read from the first new row on (its earlier bytes
  must be unchanged, checked by hash); a file rewritten in place is refused by name;
- a Parquet file is read whole, once its footer is written; it cannot be appended to, so a
  changed Parquet file is refused like a rewritten CSV file;
- every value is checked before anything of the file is stored: required columns must not
  be empty, and the kind's own ``check`` (types, ranges) names the first bad value;
- rows whose key (e.g. ``timestamp``) is already stored are dropped and counted, so the
  same reading delivered twice, in one file or in two, is stored once.

State (which bytes of which file were taken, and the rows) lives in one SQLite database at
the node, written in one transaction per file: a crash mid-file loses nothing and takes
nothing twice. Raw rows never leave the node; :mod:`participants.crossverify` and the
indicator reduction read them here.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.errors import DataError

__all__ = ["BadValue", "Inbox", "IngestReport", "ValueCheck"]

logger = logging.getLogger(__name__)

_SKIPPED_SUFFIXES: Final = (".partial", ".tmp")
_HEADER_ROWS: Final = 1
_PARQUET_MAGIC: Final = b"PAR1"


@dataclass(frozen=True)
class BadValue:
    """The first value a kind refuses in a parsed frame: 0-based position, column, why."""

    position: int
    column: str
    reason: str


ValueCheck = Callable[[pd.DataFrame], BadValue | None]
"""Checks a frame of text values (the file's new rows, in the kind's columns)."""


@dataclass
class IngestReport:
    """What one pass did, per file name."""

    ingested: dict[str, int] = field(default_factory=dict)  # new rows stored
    duplicates: dict[str, int] = field(default_factory=dict)  # rows already stored
    unchanged: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    refused: dict[str, str] = field(default_factory=dict)  # file -> why


class Inbox:
    """``folder``'s files of one kind (columns ``columns``, unique by ``key``) into the
    table ``kind`` of ``database``.

    ``optional`` columns may be missing from a file or empty in a row (stored as ``""``);
    ``check`` refuses values of the wrong type or range before a file's rows are stored.
    """

    def __init__(
        self,
        folder: Path,
        database: Path,
        *,
        kind: str,
        columns: Sequence[str],
        key: Sequence[str],
        optional: Sequence[str] = (),
        check: ValueCheck | None = None,
        settle_s: float = 2.0,
    ) -> None:
        if not kind.isidentifier():
            raise ValueError(f"kind must be an identifier, got {kind!r}")
        unknown = [c for c in optional if c not in columns]
        if unknown:
            raise ValueError(f"optional columns {unknown} are not among the columns {columns}")
        self.folder = Path(folder)
        self.kind = kind
        self.columns = tuple(columns)
        self.key = tuple(key)
        self.optional = tuple(optional)
        self.check = check
        self.settle_s = settle_s
        self._db = sqlite3.connect(database)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        cols = ", ".join(f'"{c}"' for c in self.columns)
        keys = ", ".join(f'"{c}"' for c in self.key)
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS inbox_files (kind TEXT, name TEXT, size INTEGER, "
                "prefix_sha256 TEXT, rows INTEGER, PRIMARY KEY (kind, name))"
            )
            self._db.execute(f'CREATE TABLE IF NOT EXISTS "{kind}" ({cols}, PRIMARY KEY ({keys}))')
        self._seen: dict[str, tuple[int, float, float]] = {}

    def close(self) -> None:
        self._db.close()

    def rows(self) -> pd.DataFrame:
        """Every stored row, in key order."""
        keys = ", ".join(f'"{c}"' for c in self.key)
        return pd.read_sql_query(f'SELECT * FROM "{self.kind}" ORDER BY {keys}', self._db)

    def ingest(self, *, now: float | None = None) -> IngestReport:
        """One pass over the folder (see the module docstring)."""
        report = IngestReport()
        clock = time.monotonic() if now is None else now
        for path in sorted([*self.folder.glob("*.csv"), *self.folder.glob("*.parquet")]):
            name = path.name
            if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                continue
            stat = path.stat()
            if not self._settled(name, stat.st_size, stat.st_mtime, clock):
                report.waiting.append(name)
                continue
            try:
                self._ingest_file(path, stat.st_size, report)
            except DataError as exc:
                report.refused[name] = str(exc)
                logger.warning("inbox %s: refused %s: %s", self.kind, name, exc)
        return report

    def _settled(self, name: str, size: int, mtime: float, clock: float) -> bool:
        seen = self._seen.get(name)
        if seen is None or seen[:2] != (size, mtime):
            self._seen[name] = (size, mtime, clock)
            return self.settle_s <= 0
        return clock - seen[2] >= self.settle_s

    def _ingest_file(self, path: Path, size: int, report: IngestReport) -> None:
        data = path.read_bytes()[:size]
        done = self._db.execute(
            "SELECT size, prefix_sha256, rows FROM inbox_files WHERE kind = ? AND name = ?",
            (self.kind, path.name),
        ).fetchone()
        if path.suffix == ".parquet":
            self._ingest_parquet(path, data, done, report)
            return
        taken, rows_before = 0, 0
        if done is not None:
            old_size, old_hash, rows_before = done
            if size == old_size and hashlib.sha256(data).hexdigest() == old_hash:
                report.unchanged.append(path.name)
                return
            if size < old_size or hashlib.sha256(data[:old_size]).hexdigest() != old_hash:
                raise DataError(file=str(path), row=None, column=None,
                                reason="rewritten since it was ingested, not appended to: "
                                "drop new readings as a new file")  # fmt: skip
            taken = old_size
        end = data.rfind(b"\n") + 1  # a last line without its newline is still being written
        if end <= taken:
            report.waiting.append(path.name)
            return
        frame = self._parse(path, data, start=taken, end=end, first_row=rows_before)
        stored = self._store(path.name, frame, size=end, data=data[:end], rows=rows_before)
        report.ingested[path.name] = stored
        report.duplicates[path.name] = len(frame) - stored

    def _ingest_parquet(
        self, path: Path, data: bytes, done: tuple[int, str, int] | None, report: IngestReport
    ) -> None:
        """A Parquet file whole, once: its footer ends it, and it is never appended to."""
        if done is not None:
            if len(data) == done[0] and hashlib.sha256(data).hexdigest() == done[1]:
                report.unchanged.append(path.name)
                return
            raise DataError(file=str(path), row=None, column=None,
                            reason="changed since it was ingested (a Parquet file cannot be "
                            "appended to): drop new readings as a new file")  # fmt: skip
        if not (data.startswith(_PARQUET_MAGIC) and data.endswith(_PARQUET_MAGIC)):
            report.waiting.append(path.name)  # no footer yet: still being written
            return
        frame = self._validated(path, _parquet_text(path, data), first_row=0)
        stored = self._store(path.name, frame, size=len(data), data=data, rows=0)
        report.ingested[path.name] = stored
        report.duplicates[path.name] = len(frame) - stored

    def _parse(
        self, path: Path, data: bytes, *, start: int, end: int, first_row: int
    ) -> pd.DataFrame:
        header_end = data.find(b"\n") + 1
        header = data[:header_end]
        body = data[max(start, header_end) : end]
        frame = pd.read_csv(io.BytesIO(header + body), dtype=str, keep_default_na=False)
        return self._validated(path, frame, first_row=first_row)

    def _validated(self, path: Path, frame: pd.DataFrame, *, first_row: int) -> pd.DataFrame:
        """The kind's columns of ``frame`` (text), every value checked."""
        missing = [c for c in self.columns if c not in frame.columns and c not in self.optional]
        if missing:
            raise DataError(file=str(path), row=_HEADER_ROWS, column=None,
                            reason=f"missing columns {missing}")  # fmt: skip
        frame = frame.reindex(columns=list(self.columns), fill_value="")
        for column in self.columns:
            if column in self.optional:
                continue
            empty = frame[column].str.strip() == ""
            if empty.any():
                row = first_row + int(empty.to_numpy().argmax()) + _HEADER_ROWS + 1
                raise DataError(file=str(path), row=row, column=column, reason="empty value")
        bad = None if self.check is None or frame.empty else self.check(frame)
        if bad is not None:
            raise DataError(file=str(path), row=first_row + bad.position + _HEADER_ROWS + 1,
                            column=bad.column, reason=bad.reason)  # fmt: skip
        return frame

    def _store(self, name: str, frame: pd.DataFrame, *, size: int, data: bytes, rows: int) -> int:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        with self._db:  # the rows and the file's progress in one transaction
            before = self._db.total_changes
            self._db.executemany(
                f'INSERT OR IGNORE INTO "{self.kind}" ({cols}) VALUES ({marks})',
                frame.itertuples(index=False, name=None),
            )
            stored = self._db.total_changes - before
            self._db.execute(
                "INSERT OR REPLACE INTO inbox_files VALUES (?, ?, ?, ?, ?)",
                (self.kind, name, size, hashlib.sha256(data).hexdigest(), rows + len(frame)),
            )
        logger.info("inbox %s: %s: %d new rows, %d already stored", self.kind, name, stored,
                    len(frame) - stored)  # fmt: skip
        return stored


def _parquet_text(path: Path, data: bytes) -> pd.DataFrame:
    """A Parquet file's columns as text (nulls empty), as :meth:`Inbox._validated` reads CSV."""
    try:
        table = pq.read_table(pa.BufferReader(data))
        columns = {}
        for name, column in zip(table.column_names, table.columns, strict=True):
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns[name] = pc.cast(column, pa.string()).fill_null("")
        text = pa.table(columns).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        reason = f"not a readable Parquet file of plain columns ({exc})"
        raise DataError(file=str(path), row=None, column=None, reason=reason) from exc
    return text.astype(str)
