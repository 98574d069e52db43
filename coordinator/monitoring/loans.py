"""The loan book monitoring reads: which firm, at which factory node, has a loan, from which
lender.

One row per loan in the coordinator's monitoring database (SQLite, beside the serving
state), imported from the lender's CSV ``loan_id,subject_id,factory,institution,opened_on``
with an optional ``closed_on``. Only factories with an open loan get alerts.
"""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from models.errors import DataError

__all__ = ["LOAN_COLUMNS", "Loan", "LoanBook", "read_loans"]

LOAN_COLUMNS: Final = ("loan_id", "subject_id", "factory", "institution", "opened_on")
_OPTIONAL: Final = ("closed_on",)


@dataclass(frozen=True)
class Loan:
    loan_id: str
    subject_id: str
    factory: str
    institution: str
    opened_on: date
    closed_on: date | None = None

    def open_on(self, day: date) -> bool:
        return self.opened_on <= day and (self.closed_on is None or day <= self.closed_on)


class LoanBook:
    """Loans in ``database`` (table ``loans``)."""

    def __init__(self, database: Path) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        self.path = database
        self._db = sqlite3.connect(database, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS loans (loan_id TEXT PRIMARY KEY, subject_id TEXT, "
                "factory TEXT, institution TEXT, opened_on TEXT, closed_on TEXT)"
            )
            self._db.execute("DROP INDEX IF EXISTS loans_factory")
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS loans_factory_subject ON loans (factory, subject_id)"
            )

    def close(self) -> None:
        self._db.close()

    def put(self, loans: list[Loan]) -> None:
        """Add or replace loans (by id), in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO loans VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        x.loan_id,
                        x.subject_id,
                        x.factory,
                        x.institution,
                        x.opened_on.isoformat(),
                        x.closed_on.isoformat() if x.closed_on else None,
                    )
                    for x in loans
                ],
            )

    def import_csv(self, path: Path) -> int:
        """Read every row of ``path`` (all or nothing); the number of loans."""
        loans = read_loans(path)
        self.put(loans)
        return len(loans)

    def open_loan(self, factory: str, subject_id: str, on: date) -> Loan | None:
        """The open loan on ``on`` of the firm ``subject_id`` whose readings ``factory``'s
        node holds (the latest opened, if several). A node may hold several firms' plants
        (an industrial park's platform): the loan must name both."""
        rows = self._db.execute(
            "SELECT * FROM loans WHERE factory = ? AND subject_id = ? ORDER BY opened_on DESC",
            (factory, subject_id),
        ).fetchall()
        for row in rows:
            loan = _loan(row)
            if loan.open_on(on):
                return loan
        return None

    def loans(self) -> list[Loan]:
        return [_loan(r) for r in self._db.execute("SELECT * FROM loans ORDER BY loan_id")]


def read_loans(path: Path) -> list[Loan]:
    name = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in LOAN_COLUMNS if c not in header]
            if missing:
                raise DataError(file=name, row=1, column=missing[0], reason="missing column")
            loans = [_row(name, number, row) for number, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise DataError(file=name, row=None, column=None, reason=str(exc)) from None
    seen: set[str] = set()
    for number, loan in enumerate(loans, start=2):
        if loan.loan_id in seen:
            raise DataError(file=name, row=number, column="loan_id", reason="appears twice")
        seen.add(loan.loan_id)
    return loans


def _row(file: str, number: int, row: dict[str, str]) -> Loan:
    for column in LOAN_COLUMNS:
        if not (row.get(column) or "").strip():
            raise DataError(file=file, row=number, column=column, reason="empty")
    days: dict[str, date | None] = {}
    for column in ("opened_on", *_OPTIONAL):
        text = (row.get(column) or "").strip()
        try:
            days[column] = date.fromisoformat(text) if text else None
        except ValueError:
            raise DataError(
                file=file, row=number, column=column, reason=f"not a date (YYYY-MM-DD): {text!r}"
            ) from None
    opened = days["opened_on"]
    assert opened is not None
    closed = days["closed_on"]
    if closed is not None and closed < opened:
        raise DataError(file=file, row=number, column="closed_on", reason="before opened_on")
    return Loan(
        loan_id=row["loan_id"].strip(),
        subject_id=row["subject_id"].strip(),
        factory=row["factory"].strip(),
        institution=row["institution"].strip(),
        opened_on=opened,
        closed_on=closed,
    )


def _loan(row: tuple[str, ...]) -> Loan:
    return Loan(
        loan_id=row[0],
        subject_id=row[1],
        factory=row[2],
        institution=row[3],
        opened_on=date.fromisoformat(row[4]),
        closed_on=date.fromisoformat(row[5]) if row[5] else None,
    )
