"""One pass of a factory node's edge pipeline: ingest the inbox, recompute the indicators.

Layout of the node folder (everything stays at the node):

- ``raw.db``: the stored raw rows of every kind and which bytes of which file were taken
  (:mod:`participants.inbox`);
- ``indicators_monthly.csv``: one row per firm and month (the IoT model's features);
- ``indicators_weekly.csv``: one row per firm and ISO week (:mod:`.weekly`);
- ``ingest_summary.json``: what the last pass did (files ingested, waiting, refused and
  why; rows new and duplicated; indicator rows).

The indicators are recomputed from everything stored, so they do not depend on how the
readings were split into files; a file is rewritten only when its bytes change, so a pass
with nothing new leaves every indicator file as it was.
"""

from __future__ import annotations

import json
import logging
import os
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from .errors import EdgeError
from .monthly import monthly_indicators
from .periods import SENSOR_CLOCKS, Span, observed_span
from .store import StoreReport, open_store
from .weekly import WeeklySettings, weekly_indicators

__all__ = [
    "MONTHLY_FILE",
    "RAW_DATABASE",
    "SUMMARY_FILE",
    "WEEKLY_FILE",
    "EdgePass",
    "EdgeSettings",
    "IndicatorFile",
    "run_edge_pass",
]

logger = logging.getLogger(__name__)

RAW_DATABASE: Final = "raw.db"
MONTHLY_FILE: Final = "indicators_monthly.csv"
WEEKLY_FILE: Final = "indicators_weekly.csv"
SUMMARY_FILE: Final = "ingest_summary.json"


@dataclass(frozen=True)
class EdgeSettings:
    """The node's clock and the limits of its weekly indicators."""

    timezone: str = "Asia/Shanghai"
    weekly: WeeklySettings = field(default_factory=WeeklySettings)

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise EdgeError(
                f"timezone must be an IANA zone such as 'Asia/Shanghai', got {self.timezone!r}"
            ) from exc


@dataclass(frozen=True)
class IndicatorFile:
    """One indicator file the pass wrote (or left as it was)."""

    path: Path
    rows: int
    firms: int
    periods: int
    first: str | None
    last: str | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "rows": self.rows,
            "firms": self.firms,
            "periods": self.periods,
            "first": self.first,
            "last": self.last,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class EdgePass:
    """What one pass did."""

    store: StoreReport
    stored_rows: dict[str, int]
    unregistered_firms: int
    monthly: IndicatorFile
    weekly: IndicatorFile
    summary: Path

    @property
    def refused(self) -> dict[str, str]:
        return self.store.refused()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Replace ``path`` by ``data`` atomically unless it already holds exactly that."""
    if path.is_file() and path.read_bytes() == data:
        return False
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return True


def _write_indicators(frame: pd.DataFrame, path: Path, *, period: str) -> IndicatorFile:
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    periods = sorted(set(frame[period])) if len(frame) else []
    return IndicatorFile(
        path=path,
        rows=len(frame),
        firms=int(frame["firm_id"].nunique()),
        periods=len(periods),
        first=periods[0] if periods else None,
        last=periods[-1] if periods else None,
        changed=_write_if_changed(path, data),
    )


def _unregistered(tables: dict[str, pa.Table]) -> int:
    """Firms with readings but no machine register rows (their readings are not used)."""
    registered = set(tables["machines"].column("firm_id").to_pylist())
    seen: set[str] = set()
    for kind in (*SENSOR_CLOCKS, "erp_orders", "erp_purchases"):
        seen |= set(tables[kind].column("firm_id").unique().to_pylist())
    return len(seen - registered)


def _check_folders(inbox: Path, node: Path) -> None:
    if not inbox.is_dir():
        raise EdgeError(f"inbox {inbox} is not a folder: create it with one subfolder per kind")
    inbox_r, node_r = inbox.resolve(), node.resolve()
    if node_r == inbox_r or inbox_r in node_r.parents:
        raise EdgeError(f"node folder {node} lies inside the inbox {inbox}: keep them apart")
    node.mkdir(parents=True, exist_ok=True)


def _summary(result: StoreReport, inbox: Path) -> dict[str, Any]:
    files: dict[str, Any] = {"ingested": {}, "duplicates": {}, "unchanged": [], "waiting": []}
    for kind, report in result.kinds.items():
        files["ingested"].update({f"{kind}/{k}": v for k, v in report.ingested.items()})
        files["duplicates"].update({f"{kind}/{k}": v for k, v in report.duplicates.items() if v})
        files["unchanged"] += [f"{kind}/{name}" for name in report.unchanged]
        files["waiting"] += [f"{kind}/{name}" for name in report.waiting]
    files["refused"] = result.refused()
    return {"inbox": str(inbox), "files": files}


def run_edge_pass(
    *, inbox: Path, node: Path, settings: EdgeSettings | None = None, settle_s: float = 2.0
) -> EdgePass:
    """Ingest ``inbox`` into ``node``'s raw store and recompute its indicator files."""
    settings = settings or EdgeSettings()
    inbox, node = Path(inbox), Path(node)
    _check_folders(inbox, node)
    tz = settings.timezone
    with open_store(inbox, node / RAW_DATABASE, tz=tz, settle_s=settle_s) as store:
        result = store.ingest()
        kept = store.read()
    tables, stored = kept.tables, kept.rows
    span: Span | None = observed_span(tables)
    monthly = _write_indicators(
        monthly_indicators(tables, span=span, tz=tz), node / MONTHLY_FILE, period="month"
    )
    weekly = _write_indicators(
        weekly_indicators(tables, span=span, settings=settings.weekly),
        node / WEEKLY_FILE,
        period="week",
    )
    unregistered = _unregistered(tables)
    summary = _summary(result, inbox)
    summary["rows"] = {
        "new": result.rows_new,
        "duplicated": sum(sum(r.duplicates.values()) for r in result.kinds.values()),
        "stored": stored,
    }
    summary["unregistered_firms"] = unregistered
    summary["indicators"] = {"monthly": monthly.to_dict(), "weekly": weekly.to_dict()}
    summary["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary_path = node / SUMMARY_FILE
    _write_if_changed(summary_path, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    logger.info(
        "edge pass: %d new rows, %d files refused, %d monthly and %d weekly rows",
        result.rows_new,
        len(result.refused()),
        monthly.rows,
        weekly.rows,
    )
    return EdgePass(
        store=result,
        stored_rows=stored,
        unregistered_firms=unregistered,
        monthly=monthly,
        weekly=weekly,
        summary=summary_path,
    )
