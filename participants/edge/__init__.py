"""The factory node's edge pipeline: raw readings in, monthly and weekly indicators out.

Raw files dropped into the node's inbox (one subfolder per :data:`RAW_KINDS` entry) are
ingested incrementally and idempotently by :mod:`participants.inbox`; each pass recomputes
the indicators from everything stored. Raw rows and indicator files stay in the node
folder: what a federation receives is computed from the indicators, never the readings.
"""

from __future__ import annotations

from .errors import EdgeError
from .kinds import LOAD_TYPES, RAW_KINDS, Column, RawKind, raw_kind
from .monthly import MONTHLY_COLUMNS, monthly_indicators
from .pipeline import (
    MONTHLY_FILE,
    RAW_DATABASE,
    SUMMARY_FILE,
    WEEKLY_FILE,
    EdgePass,
    EdgeSettings,
    IndicatorFile,
    run_edge_pass,
)
from .weekly import WEEKLY_COLUMNS, WeeklySettings, weekly_indicators

__all__ = [
    "LOAD_TYPES",
    "MONTHLY_COLUMNS",
    "MONTHLY_FILE",
    "RAW_DATABASE",
    "RAW_KINDS",
    "SUMMARY_FILE",
    "WEEKLY_COLUMNS",
    "WEEKLY_FILE",
    "Column",
    "EdgeError",
    "EdgePass",
    "EdgeSettings",
    "IndicatorFile",
    "RawKind",
    "WeeklySettings",
    "monthly_indicators",
    "raw_kind",
    "run_edge_pass",
    "weekly_indicators",
]
