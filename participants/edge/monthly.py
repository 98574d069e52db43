"""Monthly indicators of a node's stored readings: the IoT model's features.

The computation is the demo's (:func:`participants.demo.indicators.feature_frame`, the
reduction the IoT model was specified on); this module only hands it the stored tables as
the raw tables it reads, over the months the readings cover. Labels are not made here: they
need the firm's repayment outcomes, which the edge inbox does not take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from ..demo.indicators import INDICATOR_COLUMNS, feature_frame
from ..demo.raw_tables import RawTables
from .periods import Span

__all__ = ["MONTHLY_COLUMNS", "monthly_indicators"]

MONTHLY_COLUMNS: Final = ("row_id", "firm_id", "month", *INDICATOR_COLUMNS)
_EPOCH: Final = pd.Timestamp("1970-01-01")


def _window(span: Span, tz: str) -> dict[str, object]:
    """What the demo's calendar reads: the whole months from ``span``'s first to its last."""
    first = _EPOCH + pd.Timedelta(days=span.first_day)
    last = _EPOCH + pd.Timedelta(days=span.last_day)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    start = pd.Timestamp(year=first.year, month=first.month, day=1, tz=tz)
    end = start + pd.DateOffset(months=months)
    return {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "months": months,
        "timezone": tz,
        "label_horizon_months": 0,  # no labels here: the outcome fields are not read
        "outcomes_observed_until": end.isoformat(),
    }


def monthly_indicators(
    tables: Mapping[str, pa.Table], *, span: Span | None, tz: str
) -> pd.DataFrame:
    """One row per registered firm and month of ``span``: ``row_id`` (``<firm>-<YYYY-MM>``),
    ``firm_id``, ``month`` and the :data:`~participants.demo.indicators.INDICATOR_COLUMNS`."""
    if span is None or tables["machines"].num_rows == 0:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in MONTHLY_COLUMNS})
    frame = feature_frame(RawTables(tables=dict(tables), metadata=_window(span, tz)))
    F, M = len(frame.firm_ids), len(frame.month_labels)
    firm = np.repeat(np.asarray(frame.firm_ids, dtype=object), M)
    month = np.tile(np.asarray(frame.month_labels, dtype=object), F)
    data: dict[str, object] = {
        "row_id": [f"{f}-{m}" for f, m in zip(firm, month, strict=True)],
        "firm_id": firm,
        "month": month,
    }
    for name in INDICATOR_COLUMNS:
        data[name] = np.asarray(frame.values[name], dtype=np.float64).reshape(-1)
    return pd.DataFrame(data)
