"""The plant's calendar of whole-site closures (Spring Festival, National Day, planned
maintenance): days the monitor leaves out, so that a shutdown everyone planned is not a
change a lender is warned about.

A closures file is a CSV with one row per closure, ``first,last`` (local dates, inclusive)
and an optional ``reason``::

    first,last,reason
    2025-01-22,2025-02-08,Spring Festival
    2025-10-01,2025-10-08,National Day
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from models.errors import DataError
from participants.crossverify.activity import first_bad_row, read_columns

__all__ = ["Closure", "closed_days", "load_closures", "write_closures"]


@dataclass(frozen=True)
class Closure:
    """Days ``first`` to ``last`` (inclusive) the whole plant is planned to stand still."""

    first: date
    last: date
    reason: str = ""

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"closure ends {self.last} before it begins {self.first}")

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def closed_days(closures: Iterable[Closure]) -> frozenset[date]:
    """Every day of ``closures``."""
    return frozenset(day for closure in closures for day in closure.days())


def load_closures(path: Path) -> tuple[Closure, ...]:
    """The closures in ``path`` (see the module docstring); a bad row is named."""
    frame = read_columns(path, ("first", "last"))
    bounds = {}
    for column in ("first", "last"):
        parsed = pd.to_datetime(frame[column], errors="coerce", format="%Y-%m-%d")
        if parsed.isna().any():
            row = first_bad_row(parsed.isna())
            value = frame[column].iloc[row - 2]
            raise DataError(file=str(path), row=row, column=column,
                            reason=f"{value!r} is not a date YYYY-MM-DD")  # fmt: skip
        bounds[column] = parsed.dt.date
    backwards = bounds["last"] < bounds["first"]
    if backwards.any():
        row = first_bad_row(backwards)
        raise DataError(file=str(path), row=row, column="last",
                        reason="the closure ends before it begins")  # fmt: skip
    reasons = frame["reason"].fillna("") if "reason" in frame.columns else [""] * len(frame)
    return tuple(
        Closure(first=first, last=last, reason=str(reason))
        for first, last, reason in zip(bounds["first"], bounds["last"], reasons, strict=True)
    )


def write_closures(path: Path, closures: Iterable[Closure]) -> Path:
    """Write ``closures`` as a closures file (what :func:`load_closures` reads)."""
    rows = [(c.first.isoformat(), c.last.isoformat(), c.reason) for c in closures]
    pd.DataFrame(rows, columns=["first", "last", "reason"]).to_csv(path, index=False)
    return path
