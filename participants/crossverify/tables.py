"""A firm's :class:`~.activity.FactoryActivity` from the node's own raw tables.

A factory node keeps many firms' raw rows by kind (:mod:`participants.edge.kinds`): the
15-minute meter (``electricity_15min``), the MES's daily line output (``mes_daily``) and
the ERP's sales orders (``erp_orders``). The cross-verification reads one firm of them:

- energy: ``kwh`` summed over the firm's meters per reading time, local time in ``tz``
  (a time at which only some meters reported sums those that did);
- production: ``units_produced`` summed over the firm's lines per day (defective units
  included: the MES declares what the lines made, and that is what the meter paid for);
- invoices (declared sales): one per order the ERP records as produced, dated on its
  ``produced_on``. The ERP extract holds no invoice register; what the meter and the MES
  can confirm is that an order was made on the day the ERP says, whatever happens to it
  afterwards (shipped and invoiced days later, or cancelled after it was made). Dating
  sales on shipment instead would miss exactly the fictitious orders (booked as made,
  never shipped), and would count a cancelled order's output, which the MES declares, as
  unsold: on the demo's clean factories that raised a false MES/ERP mismatch for about
  one firm in five, and none at all dated on production.
  ``invoice_id`` is the ``order_id``, ``customer`` the ``customer_no`` (as text),
  ``quantity`` and ``amount`` (``amount_cny``) the order's.

Order versions (an order exported again once shipped, once paid) are folded by the raw
store's own :func:`~participants.edge.store.fold_versions`: each date the latest any
version recorded, the other fields from the version with most dates filled.

:func:`activity_from_node` reads ``NODE/raw.db`` read-only, one firm's rows; nothing is
written, so it can run beside an ingest.
"""

from __future__ import annotations

import sqlite3
import zoneinfo
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.errors import DataError, did_you_mean
from participants.edge.kinds import raw_kind
from participants.edge.pipeline import RAW_DATABASE
from participants.edge.store import fold_versions
from participants.edge.values import typed_table

from .activity import INVOICE_COLUMNS, FactoryActivity

__all__ = ["CROSSVERIFY_KINDS", "DEFAULT_TZ", "activity_from_node", "activity_from_tables"]

_ENERGY: Final = "electricity_15min"
_PRODUCTION: Final = "mes_daily"
_ORDERS: Final = "erp_orders"
CROSSVERIFY_KINDS: Final = (_ENERGY, _PRODUCTION, _ORDERS)
"""The raw kinds the cross-verification reads."""
DEFAULT_TZ: Final = "Asia/Shanghai"
"""The node's local time zone unless told otherwise (as ``fedrisk node ingest``)."""

_COLUMNS: Final = {
    _ENERGY: ("firm_id", "ts", "kwh"),
    _PRODUCTION: ("firm_id", "day", "units_produced"),
    _ORDERS: ("firm_id", "order_id", "customer_no", "quantity", "amount_cny", "produced_on"),
}
_ORDER_DATES: Final = ("placed_on", "produced_on", "shipped_on", "due_on", "paid_on")
_INGEST: Final = "run `fedrisk node ingest --inbox DIR --node NODE` first"


def activity_from_tables(tables: Mapping[str, pa.Table], *, firm: str, tz: str) -> FactoryActivity:
    """Firm ``firm``'s activity from raw tables of many firms (by kind, as the demo's
    ``raw/*.parquet`` or :meth:`participants.edge.store.RawStore.read` give them).

    ``tz``: the node's time zone; meter times become local times there, so a reading
    counts on the local day it was taken. :class:`~models.errors.DataError` names the kind
    and column that is missing, or the firm that has no rows (and the closest that has).
    """
    _check_tz(tz)
    return _activity(tables, firm=firm, tz=tz, source="")


def activity_from_node(node: Path, *, firm: str, tz: str = DEFAULT_TZ) -> FactoryActivity:
    """Firm ``firm``'s activity from the node's raw store ``node/raw.db``, opened read-only.

    ``tz`` must be the zone the node ingested with: stored timestamps without a UTC offset
    are local times there.
    """
    _check_tz(tz)
    database = Path(node) / RAW_DATABASE
    if not database.is_file():
        raise DataError(file=str(database), row=None, column=None,
                        reason=f"no raw store here: {_INGEST}")  # fmt: skip
    tables = _read_store(database, firm=firm, tz=tz)
    return _activity(tables, firm=firm, tz=tz, source=f"{database}: ")


def _check_tz(tz: str) -> None:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"tz must be an IANA zone such as {DEFAULT_TZ!r}, got {tz!r}") from exc


# --- the node's raw store ---------------------------------------------------------------


def _read_store(database: Path, *, firm: str, tz: str) -> dict[str, pa.Table]:
    """The firm's stored rows of each kind, typed (versions not yet folded)."""
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            present = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            for kind in CROSSVERIFY_KINDS:
                if kind not in present:
                    raise DataError(file=str(database), row=None, column=None,
                                    reason=f"no table {kind!r}: not a node's raw store; "
                                    f"{_INGEST}")  # fmt: skip
            frames = {kind: _stored_rows(db, kind, firm) for kind in CROSSVERIFY_KINDS}
            if all(frame.empty for frame in frames.values()):
                firms = set()
                for kind in CROSSVERIFY_KINDS:
                    query = f'SELECT DISTINCT firm_id FROM "{kind}"'
                    firms |= {row[0] for row in db.execute(query)}
                raise _no_firm(firm, firms, source=f"{database}: ")
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(file=str(database), row=None, column=None,
                        reason=f"unreadable raw store ({exc})") from exc  # fmt: skip
    return {kind: typed_table(raw_kind(kind), frames[kind], tz=tz) for kind in frames}


def _stored_rows(db: sqlite3.Connection, kind: str, firm: str) -> pd.DataFrame:
    """One firm's rows in the store's key order (the order its version fold relies on)."""
    keys = ", ".join(f'"{c}"' for c in raw_kind(kind).key)
    query = f'SELECT * FROM "{kind}" WHERE firm_id = ? ORDER BY {keys}'
    return pd.read_sql_query(query, db, params=(firm,))


# --- tables to activity -----------------------------------------------------------------


def _no_firm(firm: str, firms: set[str], *, source: str) -> DataError:
    hint = did_you_mean(firm, sorted(firms)) or f" ({len(firms)} firms hold rows)"
    return DataError(file=f"{source}{', '.join(CROSSVERIFY_KINDS)}", row=None,
                     column="firm_id", reason=f"no rows for firm {firm!r}{hint}")  # fmt: skip


def _firm_rows(tables: Mapping[str, pa.Table], kind: str, firm: str, source: str) -> pa.Table:
    if kind not in tables:
        raise DataError(file=f"{source}{kind}", row=None, column=None,
                        reason=f"no {kind} table (kinds given: {sorted(tables)})")  # fmt: skip
    table = tables[kind]
    missing = [c for c in _COLUMNS[kind] if c not in table.column_names]
    if missing:
        raise DataError(file=f"{source}{kind}", row=None, column=None,
                        reason=f"missing columns {missing}")  # fmt: skip
    firms = table.column("firm_id")
    if pa.types.is_dictionary(firms.type):
        firms = firms.cast(firms.type.value_type)
    keep = [c for c in table.column_names if c in (*_COLUMNS[kind], *_ORDER_DATES)]
    return table.select(keep).filter(pc.equal(firms, pa.scalar(firm, firms.type)))


def _all_firms(tables: Mapping[str, pa.Table]) -> set[str]:
    firms: set[str] = set()
    for kind in CROSSVERIFY_KINDS:
        firms |= {str(f) for f in tables[kind].column("firm_id").unique().to_pylist()}
    return firms


def _activity(
    tables: Mapping[str, pa.Table], *, firm: str, tz: str, source: str
) -> FactoryActivity:
    rows = {kind: _firm_rows(tables, kind, firm, source) for kind in CROSSVERIFY_KINDS}
    if all(table.num_rows == 0 for table in rows.values()):
        raise _no_firm(firm, _all_firms(tables), source=source)
    for kind, needed in ((_ENERGY, "meter readings"), (_PRODUCTION, "MES output")):
        if rows[kind].num_rows == 0:
            raise DataError(file=f"{source}{kind}", row=None, column="firm_id",
                            reason=f"no rows for firm {firm!r}: cross-verification needs its "
                            f"{needed}")  # fmt: skip
    return FactoryActivity(
        energy_kwh=_energy(rows[_ENERGY], tz),
        production=_production(rows[_PRODUCTION]),
        invoices=_invoices(rows[_ORDERS]),
    )


def _local_times(column: pa.ChunkedArray, tz: str) -> pd.DatetimeIndex:
    """Naive local times in ``tz`` (a column without a zone is taken as local already)."""
    stamps = pd.DatetimeIndex(column.to_pandas())
    if stamps.tz is not None:
        stamps = stamps.tz_convert(tz).tz_localize(None)
    return stamps.astype("datetime64[ns]")


def _energy(table: pa.Table, tz: str) -> pd.Series:
    kwh = pd.Series(
        table.column("kwh").to_numpy().astype(float), index=_local_times(table.column("ts"), tz)
    )
    return kwh.groupby(level=0).sum().sort_index().rename(None).rename_axis(None)


def _production(table: pa.Table) -> pd.Series:
    days = pd.DatetimeIndex(table.column("day").to_pandas(date_as_object=False))
    days = days.astype("datetime64[ns]")
    units = pd.Series(table.column("units_produced").to_numpy().astype(float), index=days)
    return units.groupby(level=0).sum().sort_index().rename(None).rename_axis(None)


def _invoices(table: pa.Table) -> pd.DataFrame:
    orders = fold_versions(raw_kind(_ORDERS), table).to_pandas(date_as_object=False)
    made = orders[orders["produced_on"].notna()].sort_values(["produced_on", "order_id"])
    invoices = pd.DataFrame(
        {
            "invoice_id": made["order_id"].astype(str).to_numpy(),
            "date": pd.DatetimeIndex(made["produced_on"]).astype("datetime64[ns]"),
            "customer": made["customer_no"].astype(str).to_numpy(),
            "quantity": made["quantity"].astype(float).to_numpy(),
            "amount": made["amount_cny"].astype(float).to_numpy(),
        }
    )
    return invoices[list(INVOICE_COLUMNS)]
