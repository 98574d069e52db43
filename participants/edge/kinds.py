"""The raw kinds a factory node's inbox accepts: one subfolder, columns and key each.

The layout follows the demo's raw tables (:mod:`participants.demo.raw_tables`), so a node's
exports and the demo's generator describe the same things, plus ``machine_events``:
condition-monitoring observations shaped like the AI4I 2020 predictive-maintenance data
(tool wear, machine failure and its five failure modes), with the machine stop it caused.

Timestamps are ISO 8601; one without a UTC offset is local time at the node. Dates are
``YYYY-MM-DD``. Optional columns may be missing from a file or empty in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["LOAD_TYPES", "RAW_KINDS", "Column", "RawKind", "raw_kind"]

ValueType = Literal["text", "float", "int", "flag", "date", "timestamp", "load_type"]

LOAD_TYPES: Final = ("light", "medium", "maximum")
"""Load types of a 15-minute reading (the UCI steel plant's Light/Medium/Maximum_Load)."""


@dataclass(frozen=True)
class Column:
    """One column of a raw kind: its value type, whether it may be empty, its lower bound."""

    name: str
    type: ValueType = "text"
    optional: bool = False
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class RawKind:
    """A raw table the node keeps: the inbox subfolder ``name``, its columns and key.

    ``ordered`` names two timestamp columns of which the second may not come before the first.
    ``versions``: rows are versions of a document that fills in over time (an order that is
    later shipped, then paid); every distinct row is kept and the versions are folded into
    one document when indicators are computed.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    ordered: tuple[str, str] | None = None
    versions: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.optional)


def _text(name: str, *, optional: bool = False) -> Column:
    return Column(name, "text", optional=optional)


def _amount(name: str, *, kind: ValueType = "float", optional: bool = False) -> Column:
    return Column(name, kind, optional=optional, min=0.0)


def _flag(name: str, *, optional: bool = False) -> Column:
    return Column(name, "flag", optional=optional)


_FIRM: Final = _text("firm_id")
_ORDER_DATES: Final = ("produced_on", "shipped_on", "due_on", "paid_on")

RAW_KINDS: Final[tuple[RawKind, ...]] = (
    RawKind(
        "machines",
        (_FIRM, _text("machine_id"), _text("line_id"), _amount("rated_kw")),
        key=("firm_id", "machine_id"),
    ),
    RawKind(
        "electricity_15min",
        (
            _FIRM,
            _text("meter_id"),
            Column("ts", "timestamp"),
            _amount("kwh"),
            Column("load_type", "load_type", optional=True),
        ),
        key=("firm_id", "meter_id", "ts"),
    ),
    RawKind(
        "utilities_hourly",
        (_FIRM, Column("ts", "timestamp"), _amount("water_m3"), _amount("gas_m3")),
        key=("firm_id", "ts"),
    ),
    RawKind(
        "climate_hourly",
        (
            _FIRM,
            Column("ts", "timestamp"),
            Column("temperature_c", "float", min=-60.0, max=150.0),
            Column("humidity_pct", "float", min=0.0, max=100.0),
        ),
        key=("firm_id", "ts"),
    ),
    RawKind(
        "machine_runs",
        (
            _FIRM,
            _text("machine_id"),
            Column("run_start", "timestamp"),
            Column("run_end", "timestamp"),
        ),
        key=("firm_id", "machine_id", "run_start"),
        ordered=("run_start", "run_end"),
    ),
    RawKind(
        "machine_counters_daily",
        (
            _FIRM,
            _text("machine_id"),
            Column("day", "date"),
            Column("run_hours", "float", min=0.0, max=24.0),
            _amount("mould_opens", kind="int"),
        ),
        key=("firm_id", "machine_id", "day"),
    ),
    RawKind(
        "mes_daily",
        (
            _FIRM,
            _text("line_id"),
            Column("day", "date"),
            _amount("units_produced", kind="int"),
            _amount("units_defective", kind="int"),
        ),
        key=("firm_id", "line_id", "day"),
    ),
    RawKind(
        "erp_orders",
        (
            _FIRM,
            _text("order_id"),
            _text("customer_no"),
            Column("placed_on", "date"),
            _amount("quantity", kind="int"),
            _amount("unit_price_cny"),
            _amount("amount_cny"),
            *(Column(name, "date", optional=True) for name in _ORDER_DATES),
        ),
        key=(
            "firm_id",
            "order_id",
            "customer_no",
            "placed_on",
            "quantity",
            "unit_price_cny",
            "amount_cny",
            *_ORDER_DATES,
        ),
        versions=("firm_id", "order_id"),
    ),
    RawKind(
        "erp_purchases",
        (
            _FIRM,
            _text("po_id"),
            _text("supplier_no"),
            Column("ordered_on", "date"),
            _amount("amount_cny"),
        ),
        key=("firm_id", "po_id"),
    ),
    RawKind(
        "machine_events",
        (
            _FIRM,
            _text("machine_id"),
            Column("ts", "timestamp"),
            _amount("tool_wear_min"),
            _flag("machine_failure"),
            *(_flag(mode, optional=True) for mode in ("twf", "hdf", "pwf", "osf", "rnf")),
            _amount("downtime_min", optional=True),
        ),
        key=("firm_id", "machine_id", "ts"),
    ),
)
"""Every kind, in the order a pass ingests them."""

_BY_NAME: Final = {kind.name: kind for kind in RAW_KINDS}


def raw_kind(name: str) -> RawKind:
    """The kind called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]
