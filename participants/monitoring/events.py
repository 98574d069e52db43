"""A confirmed change in one indicator of one factory: the only thing the monitor sends.

It carries aggregates only: the indicator's mean daily value before and after the change,
the day the change began (located by ``ruptures`` in the recent daily values), the day it
was detected, and a sentence for a credit officer. Never a reading.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import ruptures

from .watches import INDICATORS

__all__ = ["ChangeEvent", "locate_change"]


@dataclass(frozen=True)
class ChangeEvent:
    """What changed, since when, by how much (and, where the node scores, the score before
    and after)."""

    event_id: str
    factory: str
    subject_id: str
    indicator: str
    detector: str
    detected_at: datetime
    since: date
    before: float
    after: float
    change: float
    unit: str
    text: str
    score_before: float | None = None
    score_after: float | None = None
    model_version: str | None = None

    @classmethod
    def build(
        cls,
        *,
        factory: str,
        subject_id: str,
        indicator: str,
        detector: str,
        detected_at: datetime,
        since: date,
        before: float,
        after: float,
    ) -> ChangeEvent:
        unit, words = INDICATORS[indicator]
        change = after / before - 1 if before else float("inf")
        direction = "rose" if after > before else "fell"
        text = (
            f"{words.capitalize()} {direction} {abs(change):.0%} since {since.isoformat()}: "
            f"from {before:,.1f} to {after:,.1f} {unit} (detected {detected_at:%Y-%m-%d %H:%M})"
        )
        key = f"{factory}|{indicator}|{since.isoformat()}|{detected_at.isoformat()}"
        return cls(
            event_id=hashlib.sha256(key.encode()).hexdigest()[:32],
            factory=factory,
            subject_id=subject_id,
            indicator=indicator,
            detector=detector,
            detected_at=detected_at,
            since=since,
            before=round(before, 4),
            after=round(after, 4),
            change=round(change, 4),
            unit=unit,
            text=text,
        )

    def to_message(self) -> dict[str, Any]:
        """The JSON body sent to the coordinator."""
        body = asdict(self)
        body["detected_at"] = self.detected_at.isoformat()
        body["since"] = self.since.isoformat()
        return body


def locate_change(values: np.ndarray, *, min_size: int = 3) -> int:
    """Index of the first value after the most likely single change in mean of ``values``
    (binary segmentation, least squares, ruptures)."""
    if len(values) < 2 * min_size:
        return max(0, len(values) - min_size)
    algo = ruptures.Binseg(model="l2", min_size=min_size, jump=1).fit(values.reshape(-1, 1))
    breakpoints = algo.predict(n_bkps=1)
    return int(breakpoints[0])
