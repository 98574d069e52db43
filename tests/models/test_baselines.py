"""The pooled reference rows of a vertical federation: shared ids, matched row for row."""

from __future__ import annotations

import numpy as np
import pytest

from models.baselines import align_rows
from models.schema import FeatureSpec, TabularSchema
from models.tabular import TabularData
from privacy.vertical import holdout_split


def _table(ids: list[str], values: list[float], *, labels: list[float] | None) -> TabularData:
    schema = TabularSchema(
        id="id", label="y" if labels is not None else None, features=(FeatureSpec("x", "float"),)
    )
    return TabularData(
        ids=np.array(ids, dtype=object),
        features=np.array(values, dtype=np.float32).reshape(-1, 1),
        labels=None if labels is None else np.array(labels, dtype=np.float32),
        source="memory",
        schema=schema,
    )


def test_rows_are_the_shared_ids_in_sorted_order_matched_across_parties() -> None:
    # The guest's x is the id's number, the host's is ten times it: matched rows agree.
    guest = _table(["7", "3", "5", "1"], [7, 3, 5, 1], labels=[1, 0, 1, 0])
    host = _table(["5", "9", "1", "7"], [50, 90, 10, 70], labels=None)

    rows = align_rows(guest, {"gov": host}, holdout=0.34, seed=3)

    assert rows.own[:, 0].tolist() == [1.0, 5.0, 7.0]
    assert rows.hosts[0][:, 0].tolist() == [10.0, 50.0, 70.0]
    assert rows.labels.tolist() == [0, 1, 1]
    assert rows.joined.shape == (3, 2)
    train, test = holdout_split(3, holdout=0.34, seed=3)
    assert rows.train.tolist() == train.tolist() and rows.test.tolist() == test.tolist()


@pytest.mark.parametrize(
    ("guest", "host", "message"),
    [
        (_table(["1"], [1], labels=None), _table(["1"], [1], labels=None), "no labels"),
        (_table(["1"], [1], labels=[1]), _table(["2"], [2], labels=None), "share no ids"),
    ],
)
def test_unusable_tables_are_refused(guest: TabularData, host: TabularData, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        align_rows(guest, {"gov": host}, holdout=0.25, seed=0)
