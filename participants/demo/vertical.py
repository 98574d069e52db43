"""The two views of a vertically split population: the bank's and the government platform's.

The bank holds labels and financial features for its customers; the government platform
holds registry-type features for most of the same subjects and for others the bank does not
serve. Neither view alone carries the whole risk signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["VerticalSplit", "split_views"]


@dataclass(frozen=True)
class VerticalSplit:
    """Bank rows (features + ``label``) and government rows, keyed by ``id_column``."""

    id_column: str
    bank: pd.DataFrame
    gov: pd.DataFrame


def split_views(
    ids: list[str],
    bank_features: pd.DataFrame,
    gov_features: pd.DataFrame,
    label: np.ndarray,
    rng: np.random.Generator,
    *,
    n_bank: int,
    id_column: str,
    gov_coverage: float,
) -> VerticalSplit:
    """Split a population of ``len(ids)`` subjects into the two parties' tables.

    The first ``n_bank`` subjects are the bank's customers; a share ``gov_coverage`` of them
    and every later subject are on the government platform. Both tables are sorted by id.
    """
    if not 0.0 < gov_coverage <= 1.0:
        raise ValueError(f"gov_coverage must be in (0, 1], got {gov_coverage}")
    n = len(ids)
    at_gov = np.ones(n, dtype=bool)
    at_gov[:n_bank] = rng.random(n_bank) < gov_coverage
    id_series = pd.Series(ids, name=id_column)
    bank = pd.concat([id_series[:n_bank], bank_features.iloc[:n_bank]], axis=1)
    bank["label"] = label[:n_bank].astype(np.int64)
    gov = pd.concat([id_series, gov_features], axis=1)[at_gov]
    return VerticalSplit(
        id_column=id_column,
        bank=bank.sort_values(id_column, kind="stable").reset_index(drop=True),
        gov=gov.sort_values(id_column, kind="stable").reset_index(drop=True),
    )
