"""A factory's declared and physical activity, as its node holds it, reduced to days.

Physical: the meter's 15-minute energy readings. Declared: the MES's daily production
counts and the ERP's invoices (id, date, customer, quantity, amount). Everything here stays
at the node; :mod:`.checks` turns it into flags, the only thing that leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.errors import DataError

__all__ = [
    "INVOICE_COLUMNS",
    "FactoryActivity",
    "first_bad_row",
    "load_activity",
    "parse_numbers",
    "parse_times",
    "read_columns",
]

INVOICE_COLUMNS: Final = ("invoice_id", "date", "customer", "quantity", "amount")
_HEADER_ROWS: Final = 1


@dataclass(frozen=True)
class FactoryActivity:
    """``energy_kwh``: readings indexed by timestamp; ``production``: MES units per day
    (indexed by day); ``invoices``: one row per ERP invoice (:data:`INVOICE_COLUMNS`)."""

    energy_kwh: pd.Series
    production: pd.Series
    invoices: pd.DataFrame

    def daily(self) -> pd.DataFrame:
        """One row per day: energy, MES units, invoiced units and amount, invoice count, and
        ``metered``: whether the meter has readings that day (a day without readings is
        unknown, not a day without energy)."""
        energy = self.energy_kwh.groupby(self.energy_kwh.index.normalize()).sum()
        days = energy.index.union(self.production.index)
        invoices = self.invoices.assign(day=pd.to_datetime(self.invoices["date"]).dt.normalize())
        sold = invoices.groupby("day").agg(
            invoiced_units=("quantity", "sum"),
            invoiced_amount=("amount", "sum"),
            invoices=("invoice_id", "count"),
        )
        frame = pd.DataFrame(index=days.union(sold.index))
        frame["energy_kwh"] = energy
        frame["mes_units"] = self.production
        frame = frame.join(sold).fillna(0.0)
        frame["metered"] = frame.index.isin(energy.index)
        frame.index.name = "day"
        return frame


def load_activity(*, energy: Path, production: Path, invoices: Path) -> FactoryActivity:
    """Read the three sources (CSV); :class:`~models.errors.DataError` names the file, the
    row and the column of the first bad value."""
    readings = read_columns(energy, ("timestamp", "kwh"))
    made = read_columns(production, ("date", "units"))
    sold = read_columns(invoices, INVOICE_COLUMNS)
    stamps = parse_times(readings, "timestamp", energy)
    days = parse_times(made, "date", production).dt.normalize()
    parse_times(sold, "date", invoices)
    kwh = parse_numbers(readings, "kwh", energy)
    units = parse_numbers(made, "units", production)
    for column in ("quantity", "amount"):
        parse_numbers(sold, column, invoices)
    repeated = stamps.duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0]) + _HEADER_ROWS + 1
        raise DataError(file=str(energy), row=row, column="timestamp", reason="duplicated reading")
    return FactoryActivity(
        energy_kwh=pd.Series(kwh.to_numpy(), index=pd.DatetimeIndex(stamps)).sort_index(),
        production=pd.Series(units.to_numpy(), index=pd.DatetimeIndex(days)).groupby(level=0).sum(),
        invoices=sold.astype({"quantity": float, "amount": float}),
    )


def read_columns(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            file=str(path), row=None, column=None, reason=f"unreadable: {exc}"
        ) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(file=str(path), row=_HEADER_ROWS, column=None,
                        reason=f"missing columns {missing}")  # fmt: skip
    return frame


def first_bad_row(mask: pd.Series) -> int:
    """The file row (header = row 1) of the first true value of ``mask``."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + _HEADER_ROWS + 1


def parse_times(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_datetime(frame[column], errors="coerce", format="ISO8601")
    if values.isna().any():
        row = first_bad_row(values.isna())
        value = frame[column].iloc[row - 2]
        raise DataError(
            file=str(path), row=row, column=column, reason=f"{value!r} is not a date or time"
        )
    return values


def parse_numbers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values < 0) | ~np.isfinite(values.fillna(0.0))
    if bad.any():
        row = first_bad_row(bad)
        value = frame[column].iloc[row - 2]
        raise DataError(
            file=str(path), row=row, column=column, reason=f"{value!r} is not a number >= 0"
        )
    frame[column] = values
    return values
