"""A node's partial results for reason codes: a categorical's one-hot columns are occluded
together, in one evaluation, and the subject's own category is named."""

from __future__ import annotations

import numpy as np
import pytest

from models.occlusion import OcclusionGroup
from models.schema import FeatureSpec, TabularSchema
from models.tabular import TabularData
from models.vertical_parts import PartScorer, lr_part_graph
from participants.serving.parts import ServedPart, ServingError

FEATURES = ("area", "crop_rice", "crop_corn", "crop_fruit", "member")
CROP = OcclusionGroup("crop", ("crop_rice", "crop_corn", "crop_fruit"), ("rice", "corn", "fruit"))
WEIGHTS = np.array([1.0, 1.0, 2.0, 4.0, 0.5])
ROWS = {
    "fruit": [3.0, 0, 0, 1, 1],
    "rice": [1.0, 1, 0, 0, 0],
    "corn": [2.0, 0, 1, 0, 1],
    "no-crop": [4.0, 0, 0, 0, 0],
}


def _part(groups: tuple[OcclusionGroup, ...]) -> ServedPart:
    schema = TabularSchema(
        id="id", label=None, features=tuple(FeatureSpec(f, "float") for f in FEATURES)
    )
    table = TabularData(
        ids=np.array(list(ROWS)),
        features=np.array(list(ROWS.values()), dtype=np.float32),
        labels=None,
        source="test",
        schema=schema,
    )
    graph = lr_part_graph(
        party="gov", mean=np.zeros(5), scale=np.ones(5), weights=WEIGHTS, clip_norm=1e6
    )
    return ServedPart(
        model="m",
        version="v1",
        party="gov",
        features=FEATURES,
        categories=["gov.agri"],
        table=table,
        run=PartScorer(graph),
        groups=groups,
    )


def test_a_categorical_is_occluded_as_a_whole_and_its_own_level_named() -> None:
    part = _part((CROP,))
    baseline = np.array(list(ROWS.values())).mean(axis=0)

    result = part.infer(["fruit", "no-crop", "nobody"], explain=True)

    assert result.missing == ["nobody"]
    assert set(result.occluded["fruit"]) == {"area", "crop", "member"}
    occluded = np.array(ROWS["fruit"])
    occluded[1:4] = baseline[1:4]
    assert result.occluded["fruit"]["crop"] == pytest.approx([occluded @ WEIGHTS])
    alone = np.array(ROWS["fruit"])
    alone[0] = baseline[0]
    assert result.occluded["fruit"]["area"] == pytest.approx([alone @ WEIGHTS])
    assert result.outputs["fruit"] == pytest.approx([np.array(ROWS["fruit"]) @ WEIGHTS])
    # The subject's own category only; none is named for a row without one.
    assert result.levels == {"fruit": {"crop": "fruit"}}


def test_without_groups_every_feature_is_occluded_alone() -> None:
    result = _part(()).infer(["rice"], explain=True)

    assert set(result.occluded["rice"]) == set(FEATURES)
    assert result.levels == {}


def test_a_group_naming_a_feature_the_part_does_not_read_is_refused() -> None:
    stray = OcclusionGroup("soil", ("soil_clay", "soil_sand"), ("clay", "sand"))

    with pytest.raises(ServingError, match="soil_clay"):
        _part((stray,))
