"""The demo's fixed calendar: observation window, outcome horizon and consent reference time.

Everything is anchored to constants, never to the wall clock, so that a seed alone fixes the
scenario. Local time is China Standard Time (UTC+8, no daylight saving).

    |<- raw sensor / ERP observation (``months``) ->|<- 12-month outcome window ->|  as_of
    start                                          end                 outcomes_until
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Final

import numpy as np
import pandas as pd

__all__ = [
    "CONSENT_AS_OF",
    "FACTORY_CLOSURES",
    "LABEL_HORIZON_MONTHS",
    "LOCAL_TZ",
    "OUTCOMES_OBSERVED_UNTIL",
    "ObservationWindow",
    "observation_window",
]

LOCAL_TZ: Final = "Asia/Shanghai"
CONSENT_AS_OF: Final = datetime(2026, 6, 30, tzinfo=UTC)
"""Reference time of the consent check for training (the round start the demo assumes)."""
LABEL_HORIZON_MONTHS: Final = 12
"""A row is labelled 1 when the subject defaults within this many months after it."""
OUTCOMES_OBSERVED_UNTIL: Final = pd.Timestamp("2026-06-01", tz=LOCAL_TZ)
"""Exclusive end of the repayment-outcome history the label holders have."""

#: Whole-factory closures around the Spring Festival and National Day (local dates, inclusive).
FACTORY_CLOSURES: Final = (
    ("2023-01-14", "2023-01-29"),
    ("2023-10-01", "2023-10-06"),
    ("2024-02-03", "2024-02-19"),
    ("2024-10-01", "2024-10-07"),
    ("2025-01-22", "2025-02-08"),
    ("2025-10-01", "2025-10-08"),
)


@dataclass(frozen=True)
class ObservationWindow:
    """``months`` whole calendar months of raw data, ending where the outcome window begins."""

    months: int
    start: pd.Timestamp
    end: pd.Timestamp

    @cached_property
    def month_starts(self) -> pd.DatetimeIndex:
        """The ``months + 1`` month boundaries, local time."""
        return pd.date_range(self.start, self.end, freq="MS")

    @cached_property
    def month_labels(self) -> list[str]:
        """``YYYY-MM`` for each month of the window."""
        return [ts.strftime("%Y-%m") for ts in self.month_starts[:-1]]

    @cached_property
    def days(self) -> pd.DatetimeIndex:
        """Every local calendar day of the window."""
        return pd.date_range(self.start, self.end, freq="D", inclusive="left")

    @property
    def n_days(self) -> int:
        """Number of days in the window."""
        return len(self.days)

    @cached_property
    def month_of_day(self) -> np.ndarray:
        """Month index (0-based) of each day."""
        edges = self.month_starts.asi8
        return np.asarray(np.searchsorted(edges, self.days.asi8, side="right") - 1)

    @cached_property
    def days_in_month(self) -> np.ndarray:
        """Number of days of each month."""
        return np.bincount(self.month_of_day, minlength=self.months)

    @cached_property
    def closed_day(self) -> np.ndarray:
        """Whether each day falls in a whole-factory holiday closure."""
        closed = np.zeros(self.n_days, dtype=bool)
        for first, last in FACTORY_CLOSURES:
            lo = pd.Timestamp(first, tz=LOCAL_TZ)
            hi = pd.Timestamp(last, tz=LOCAL_TZ)
            closed |= np.asarray((self.days >= lo) & (self.days <= hi))
        return closed

    @cached_property
    def weekday(self) -> np.ndarray:
        """Day of week of each day (Monday = 0)."""
        return np.asarray(self.days.dayofweek)

    def month_start(self, index: int) -> pd.Timestamp:
        """Start of month ``index``, which may lie outside the window (negative or beyond)."""
        return self.start + pd.DateOffset(months=index)


def observation_window(*, months: int) -> ObservationWindow:
    """The window of ``months`` months that ends twelve months before the outcome cut-off."""
    if not 3 <= months <= 36:
        raise ValueError(f"months must be between 3 and 36, got {months}")
    end = OUTCOMES_OBSERVED_UNTIL - pd.DateOffset(months=LABEL_HORIZON_MONTHS)
    start = end - pd.DateOffset(months=months)
    return ObservationWindow(months=months, start=start, end=end)
