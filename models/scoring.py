"""Batch scoring of a CSV or Parquet file with a registered model (``fedrisk score``).

The input is validated against the schema recorded in the model's card (the label column
may be absent), scored by the version's ONNX graph, and written as CSV ``id,score,band``:
the subject id, the default probability and the risk band.

Risk bands (:data:`RISK_BANDS`), by predicted probability of default or overdue within
12 months, each band's lower bound inclusive:

====  =========================
band  probability of default
====  =========================
A     below 2 %
B     2 % to below 5 %
C     5 % to below 10 %
D     10 % to below 20 %
E     20 % and above
====  =========================
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from .errors import ModelsError
from .onnx_export import OnnxModel
from .registry import ModelRegistry
from .schema import TabularSchema
from .tabular import load_table

__all__ = ["RISK_BANDS", "ScoreSummary", "risk_band", "risk_bands", "score_file"]

logger = logging.getLogger(__name__)

#: ``(band, upper bound)`` pairs: a probability below the bound (and at or above the
#: previous one) falls in the band; the last band is open-ended.
RISK_BANDS: Final[tuple[tuple[str, float], ...]] = (
    ("A", 0.02),
    ("B", 0.05),
    ("C", 0.10),
    ("D", 0.20),
    ("E", float("inf")),
)

_BAND_NAMES: Final = np.array([band for band, _ in RISK_BANDS])
_BOUNDS: Final = tuple(bound for _, bound in RISK_BANDS[:-1])
_CUTOFFS: Final = np.array(_BOUNDS)
_OUTPUT_COLUMNS: Final = ("id", "score", "band")


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run produced: counts only, never the scored subjects."""

    model: str
    version: str
    n_rows: int
    band_counts: Mapping[str, int]
    mean_score: float
    output_path: Path
    duration_s: float


def risk_band(probability: float) -> str:
    """The risk band letter of one probability (what :func:`risk_bands` gives for each)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError("probabilities must lie in [0, 1]")
    return RISK_BANDS[bisect.bisect_right(_BOUNDS, probability)][0]


def risk_bands(probabilities: np.ndarray) -> np.ndarray:
    """The risk band letter of each probability (see :data:`RISK_BANDS`)."""
    values = np.asarray(probabilities, dtype=np.float64)
    if values.size and not np.all((values >= 0.0) & (values <= 1.0)):
        raise ValueError("probabilities must lie in [0, 1]")
    return _BAND_NAMES[np.searchsorted(_CUTOFFS, values, side="right")]


def score_file(
    registry: ModelRegistry,
    *,
    model: str,
    version: str | None,
    input_path: Path,
    output_path: Path,
) -> ScoreSummary:
    """Score every row of ``input_path`` with ``model`` (latest version if ``None``).

    Raises :class:`~models.errors.ModelNotFoundError` for an unknown model or version and
    :class:`~models.errors.DataError` (naming file, row and column) for input that does
    not fit the model's schema. The output file appears atomically.
    """
    started = time.perf_counter()
    registered = registry.resolve(model, version)
    if registered.card.mode == "vertical":
        parties = ", ".join(p["party"] for p in registered.card.architecture.get("parts", []))
        raise ModelsError(
            f"model {model} {registered.version} is vertical: its features live at {parties} "
            "and it is scored in parts, each on its party's node, never from one file"
        )
    schema = TabularSchema.from_dict(registered.card.schema)
    onnx_model = OnnxModel(registered.onnx_path)
    if onnx_model.n_features != len(schema.features):
        raise ModelsError(
            f"model {model} {registered.version}: the ONNX graph takes {onnx_model.n_features} "
            f"features but the card's schema lists {len(schema.features)}"
        )
    table = load_table(Path(input_path), schema, require_label=False)
    scores = onnx_model.predict(table.features).astype(np.float64)
    if onnx_model.output_kind == "logit":
        scores = 1.0 / (1.0 + np.exp(-scores))
    bands = risk_bands(scores)
    _write_scores(Path(output_path), ids=table.ids, scores=scores, bands=bands)
    counts = {band: int(np.count_nonzero(bands == band)) for band, _ in RISK_BANDS}
    summary = ScoreSummary(
        model=model,
        version=registered.version,
        n_rows=int(scores.shape[0]),
        band_counts=counts,
        mean_score=float(scores.mean()) if scores.size else float("nan"),
        output_path=Path(output_path),
        duration_s=time.perf_counter() - started,
    )
    logger.info(
        "scored %d rows with %s %s in %.3f s; bands %s",
        summary.n_rows,
        model,
        registered.version,
        summary.duration_s,
        counts,
    )
    return summary


def _write_scores(path: Path, *, ids: np.ndarray, scores: np.ndarray, bands: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    frame = pd.DataFrame(
        {_OUTPUT_COLUMNS[0]: ids, _OUTPUT_COLUMNS[1]: scores, _OUTPUT_COLUMNS[2]: bands}
    )
    try:
        frame.to_csv(partial, index=False, float_format="%.6f")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
