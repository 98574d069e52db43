"""A vertical party's model inputs, derived on its own node from the tables it holds.

The farmer-credit and SME-risk models read each party's features as
:mod:`models.specs` declares them: numeric columns as stored, categorical columns one-hot
encoded (``main_crop`` -> ``main_crop_rice``, ...). Like a factory's monthly indicators,
the encoding runs where the data lives; only the derived table is trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from models.schema import FeatureSpec
from models.specs import get_spec, one_hot_name
from participants.demo.columns import ColumnSpec
from participants.demo.errors import ScenarioError

__all__ = ["model_view", "view_columns"]


def _source(feature: str, columns: Sequence[ColumnSpec]) -> tuple[ColumnSpec, str | None]:
    """The stored column a model feature comes from, and the level for a one-hot feature."""
    for column in columns:
        if column.name == feature:
            return column, None
        for level in column.levels:
            if one_hot_name(column.name, level) == feature:
                return column, level
    raise ScenarioError(f"model feature {feature!r} has no source column in the table")


def model_view(
    frame: pd.DataFrame,
    columns: Sequence[ColumnSpec],
    features: Sequence[FeatureSpec],
    *,
    id_column: str,
) -> pd.DataFrame:
    """``frame`` reduced to ``features`` (plus its id and, if present, ``label`` column)."""
    out = {id_column: frame[id_column]}
    for feature in features:
        column, level = _source(feature.name, columns)
        values = frame[column.name]
        out[feature.name] = values if level is None else (values == level).astype("int64")
    if "label" in frame.columns:
        out["label"] = frame["label"]
    return pd.DataFrame(out)


def view_columns(model: str, party: str) -> tuple[ColumnSpec, ...]:
    """Catalogue entries of the model's features at ``party`` (for the node's manifest)."""
    spec = get_spec(model)
    return tuple(
        ColumnSpec(
            name=f.name,
            type=f.type,
            description=spec.reason_phrase(f.name),
            min=0 if f.type == "bool" else f.min,
            max=1 if f.type == "bool" else f.max,
        )
        for f in spec.party_schema(party).features
    )
