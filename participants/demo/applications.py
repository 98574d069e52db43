"""Credit applications of the demo's factory firms, for ``fedrisk decide`` in the demo.

Each firm of the steward's evaluation file applies once: most as new applicants asking for
a working-capital line, some as existing customers up for their annual review (a current
limit and the score of their last review). The figures are seeded, like the scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

__all__ = ["EXISTING_SHARE", "write_iot_applications"]

#: Share of the firms that are existing customers up for review.
EXISTING_SHARE: Final = 0.35


def write_iot_applications(
    evaluation_file: Path,
    path: Path,
    *,
    id_column: str,
    label_column: str | None,
    seed: int,
    firm_column: str | None = None,
    period_column: str | None = None,
) -> Path:
    """One application per firm of ``evaluation_file`` (its features, never its label): with
    ``firm_column`` and ``period_column``, from each firm's latest period's indicators, under
    the firm's id (the application's id column then holds the firm, not the period's row)."""
    frame = pd.read_csv(evaluation_file, dtype={id_column: str})
    if firm_column is not None and period_column is not None:
        latest = frame.groupby(firm_column)[period_column].transform("max")
        frame = frame[frame[period_column] == latest].drop_duplicates(firm_column)
        frame = frame.reset_index(drop=True)
        # The applicant is the firm, not its latest month: consent, decisions and loans
        # name it by its credit code.
        frame[id_column] = frame[firm_column].astype(str)
    if label_column is not None:
        frame = frame.drop(columns=[label_column], errors="ignore")
    rng = np.random.default_rng([seed, 14])
    rows = len(frame)
    existing = rng.random(rows) < EXISTING_SHARE
    asked = rng.integers(5, 300, rows) * 10_000.0
    frame["requested_amount"] = np.where(existing, np.nan, asked)
    frame["current_limit"] = np.where(existing, rng.integers(20, 200, rows) * 10_000.0, np.nan)
    frame["previous_score"] = np.where(existing, rng.uniform(0.0, 0.25, rows).round(4), np.nan)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
