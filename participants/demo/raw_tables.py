"""The raw tables a factory node keeps at home, and their Parquet files.

Raw series never leave the node; only the monthly indicators computed from them do.
Layout of ``<factory>/raw/``:

- ``machines.parquet``: one row per machine (firm_id, machine_id, line_id, rated_kw)
- ``electricity_15min.parquet``: main-meter readings every 15 minutes (firm_id, meter_id,
  ts, kwh)
- ``utilities_hourly.parquet``: water and gas per hour (firm_id, ts, water_m3, gas_m3)
- ``climate_hourly.parquet``: workshop sensor per hour (firm_id, ts, temperature_c,
  humidity_pct)
- ``machine_runs.parquet``: status log as run intervals, idle otherwise (firm_id,
  machine_id, run_start, run_end)
- ``machine_counters_daily.parquet``: per machine and day (firm_id, machine_id, day,
  run_hours, mould_opens)
- ``mes_daily.parquet``: per production line and day (firm_id, line_id, day,
  units_produced, units_defective)
- ``erp_orders.parquet``: sales orders (firm_id, order_id, customer_no, placed_on, quantity,
  unit_price_cny, amount_cny, produced_on, shipped_on, due_on, paid_on)
- ``erp_purchases.parquet``: purchase orders (firm_id, po_id, supplier_no, ordered_on,
  amount_cny)
- ``credit_outcomes.parquet``: the firm's repayment events (firm_id, event_on, event)
- ``metadata.json``: observation window and outcome horizon

Electricity is at 15 minutes; water, gas and climate hourly; machine status as run intervals;
counters and MES daily; ERP at document level. Timestamps are local time (Asia/Shanghai).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from participants.demo.errors import ScenarioError

__all__ = ["RAW_TABLE_NAMES", "RawTables", "read_raw_tables", "write_raw_tables"]

RAW_TABLE_NAMES: Final = (
    "machines",
    "electricity_15min",
    "utilities_hourly",
    "climate_hourly",
    "machine_runs",
    "machine_counters_daily",
    "mes_daily",
    "erp_orders",
    "erp_purchases",
    "credit_outcomes",
)
_METADATA_FILE: Final = "metadata.json"


@dataclass(frozen=True)
class RawTables:
    """One node's raw tables (Arrow) and the metadata that dates them."""

    tables: dict[str, pa.Table]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pa.Table:
        return self.tables[name]


def _plain_strings(table: pa.Table) -> pa.Table:
    """Decode dictionary columns; Parquet re-encodes them itself, byte-stably."""
    for i, column_type in enumerate(table.schema.types):
        if pa.types.is_dictionary(column_type):
            column = table.column(i).cast(column_type.value_type)
            table = table.set_column(i, table.schema.names[i], column)
    return table


def write_raw_tables(raw: RawTables, directory: Path) -> dict[str, int]:
    """Write every table as zstd-compressed Parquet; return the bytes written per file."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    for name in RAW_TABLE_NAMES:
        path = directory / f"{name}.parquet"
        table = _plain_strings(raw.tables[name])
        options: dict[str, Any] = {}
        if "ts" in table.column_names:  # regular series: delta-encode the clock
            options["column_encoding"] = {"ts": "DELTA_BINARY_PACKED"}
            options["use_dictionary"] = [c for c in table.column_names if c != "ts"]
        pq.write_table(
            table,
            path,
            compression="zstd",
            compression_level=1,
            row_group_size=1 << 20,
            **options,
        )
        sizes[path.name] = path.stat().st_size
    meta_path = directory / _METADATA_FILE
    meta_path.write_text(json.dumps(raw.metadata, indent=2, sort_keys=True) + "\n")
    sizes[meta_path.name] = meta_path.stat().st_size
    return sizes


def read_raw_tables(directory: Path) -> RawTables:
    """Read the raw tables written by :func:`write_raw_tables`."""
    missing = [n for n in RAW_TABLE_NAMES if not (directory / f"{n}.parquet").is_file()]
    if missing or not (directory / _METADATA_FILE).is_file():
        raise ScenarioError(
            f"{directory} is not a factory raw-data folder (missing {missing or [_METADATA_FILE]})"
        )
    tables = {name: pq.read_table(directory / f"{name}.parquet") for name in RAW_TABLE_NAMES}
    metadata = json.loads((directory / _METADATA_FILE).read_text())
    return RawTables(tables=tables, metadata=metadata)
