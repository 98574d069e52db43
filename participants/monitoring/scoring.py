"""The score before and after a change, computed at the node with the served IoT model.

A change event says what changed in the firm's readings; the lender also wants to know what
it did to the firm's risk. The node holds the firm's monthly indicators (the IoT model's
features, ``indicators_monthly.csv`` of ``fedrisk node ingest``) and the published model
(ONNX, from the registry); it scores two of the firm's months and adds the two
probabilities, and the model version, to the event:

- *before*: the firm's latest month that ended before the change began (``since``);
- *after*: the firm's latest month from the change's month up to the month it was detected
  in (the indicators of a month still running cover its days so far).

A month that is not there leaves its score out (``None``): no score is made up. Only the two
probabilities leave the node, never the features.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.errors import DataError, ModelsError
from models.onnx_export import OnnxModel
from models.registry import ModelRegistry
from models.schema import TabularSchema
from models.tabular import load_table

from .events import ChangeEvent

__all__ = ["ChangeScorer"]

_FIRM: Final = "firm_id"
_MONTH: Final = "month"


class ChangeScorer:
    """Scores ``model`` (``version``, or the latest) of ``registry`` over the monthly
    indicators in ``features`` (columns ``firm_id``, ``month`` (``YYYY-MM``) and the model's
    id and features)."""

    def __init__(
        self, *, registry: Path, model: str, features: Path, version: str | None = None
    ) -> None:
        registered = ModelRegistry(registry).resolve(model, version)
        if registered.card.mode != "horizontal":
            raise ModelsError(
                f"{model} {registered.version} is a {registered.card.mode} model: a node "
                "cannot score it alone; name the horizontal IoT model"
            )
        self.model = model
        self.version = registered.version
        schema = TabularSchema.from_dict(registered.card.schema)
        table = load_table(features, schema, require_label=False)
        periods = _periods(features, rows=len(table.ids))
        self._run = OnnxModel(registered.onnx_path, threads=1)
        self._rows: dict[str, list[tuple[str, int]]] = {}
        for index, (firm, month) in enumerate(periods):
            self._rows.setdefault(firm, []).append((month, index))
        for months in self._rows.values():
            months.sort()
        self._x = np.asarray(table.features, dtype=np.float32)

    def months(self, firm: str) -> list[str]:
        """The months held for ``firm`` (``YYYY-MM``, oldest first)."""
        return [m for m, _ in self._rows.get(firm, [])]

    def score(self, event: ChangeEvent) -> ChangeEvent:
        """``event`` with the firm's score before and after the change and the version."""
        held = self._rows.get(event.subject_id, [])
        since = f"{event.since:%Y-%m}"
        detected = f"{event.detected_at:%Y-%m}"
        before = [i for m, i in held if m < since]
        after = [i for m, i in held if since <= m <= detected]
        picked = [rows[-1] for rows in (before, after) if rows]
        scores = iter(self._run.predict(self._x[picked]).reshape(-1).tolist() if picked else [])
        score_before = round(float(next(scores)), 4) if before else None
        score_after = round(float(next(scores)), 4) if after else None
        said = [
            f"{when} {value:.1%}"
            for when, value in (("before", score_before), ("after", score_after))
            if value is not None
        ]
        text = event.text
        if said:
            text += f"; default risk ({self.model} {self.version}) " + ", ".join(said)
        return dataclasses.replace(
            event,
            score_before=score_before,
            score_after=score_after,
            model_version=self.version,
            text=text,
        )


def _periods(path: Path, *, rows: int) -> list[tuple[str, str]]:
    """(firm, month) of each row of the indicators file, checked."""
    name = str(path)
    wanted = (_FIRM, _MONTH)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            frame = frame[[c for c in frame.columns if c in wanted]]
        else:
            frame = pd.read_csv(path, usecols=lambda c: c in wanted, dtype=str)
    except (OSError, ValueError) as exc:
        raise DataError(file=name, row=None, column=None, reason=str(exc)) from None
    for column in (_FIRM, _MONTH):
        if column not in frame.columns:
            raise DataError(file=name, row=1, column=column, reason="missing column")
    if len(frame) != rows:
        raise DataError(file=name, row=None, column=None, reason="rows changed while read")
    firms = frame[_FIRM].astype(str).tolist()
    months = frame[_MONTH].astype(str).tolist()
    for number, month in enumerate(months, start=2):
        if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
            raise DataError(
                file=name, row=number, column=_MONTH, reason=f"not a month (YYYY-MM): {month!r}"
            )
    return list(zip(firms, months, strict=True))
