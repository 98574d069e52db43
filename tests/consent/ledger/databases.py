"""Where a ledger test's tables live: SQLite or PostgreSQL, and what an attacker can do."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from consent.ledger import EvidenceLog, LedgerSigner

TABLES = ("ledger_entries", "ledger_nodes", "ledger_heads", "ledger_purges")


@dataclass(frozen=True)
class LedgerDatabase:
    """Where a test's ledger lives: its signing key in ``folder``, its tables in SQLite
    (``folder/ledger.db``, opened as ``EvidenceLog.in_folder`` does) or in PostgreSQL."""

    folder: Path
    postgres_url: str | None = None

    @property
    def url(self) -> str:
        return self.postgres_url or f"sqlite:///{self.folder / 'ledger.db'}"

    def open(self, *, read_only: bool = False) -> EvidenceLog:
        if self.postgres_url is None:
            return EvidenceLog.in_folder(self.folder, read_only=read_only)
        signer = None if read_only else LedgerSigner.in_folder(self.folder)
        return EvidenceLog(self.postgres_url, signer=signer)

    def tamper(self, sql: str, **params: object) -> None:
        """What an attacker with write access to the database could do (triggers dropped or
        disabled first)."""
        if self.postgres_url is None:
            with sqlite3.connect(self.folder / "ledger.db") as db:
                for table in TABLES:
                    for op in ("update", "delete"):
                        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
                db.execute(sql, params)
            return
        engine = create_engine(self.postgres_url)
        try:
            with engine.begin() as conn:
                for table in TABLES:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                conn.execute(text(sql), params)
        finally:
            engine.dispose()

    def execute(self, sql: str) -> None:
        """Run ``sql`` as any client of the database could (the triggers in place)."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()
