"""Occlusion groups (models/occlusion.py): what reason codes occlude together, as published."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.card import ModelCard
from models.errors import SchemaError
from models.occlusion import CARD_KEY, OcclusionGroup, cover, groups_from_card
from models.registry import ModelRegistry
from models.specs import card_occlusion_groups, get_spec
from models.vertical_parts import PartRef, combiner_graph

CROP = OcclusionGroup.one_hot("crop", ["rice", "corn"])


def test_a_categorical_is_one_group_where_its_first_column_is() -> None:
    groups = cover(["area", "crop_corn", "member", "crop_rice"], [CROP])

    assert [g.name for g in groups] == ["area", "crop", "member"]
    assert groups[1] == OcclusionGroup("crop", ("crop_corn", "crop_rice"), ("corn", "rice"))
    assert not groups[0].categorical and groups[1].categorical


def test_a_party_without_the_categorical_has_single_features_only() -> None:
    assert cover(["area", "member"], [CROP]) == (
        OcclusionGroup("area", ("area",)),
        OcclusionGroup("member", ("member",)),
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: OcclusionGroup("crop", ("crop_rice",), ("rice", "corn")), "one level per column"),
        (lambda: OcclusionGroup("crop", ("crop_rice", "crop_rice"), ("a", "b")), "twice"),
        (lambda: OcclusionGroup("area", ("size",)), "that one feature"),
        (lambda: cover(["crop", "crop_rice", "crop_corn"], [CROP]), "clash"),
        (lambda: cover(["crop_rice"], [CROP, OcclusionGroup("r", ("crop_rice",), ("y",))]), "two"),
    ],
)
def test_malformed_groups_are_refused(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=match):
        make()


def test_a_card_entry_without_groups_is_an_older_card() -> None:
    assert groups_from_card({"party": "gov"}) is None
    assert groups_from_card({CARD_KEY: [CROP.to_dict()]}) == (CROP,)
    with pytest.raises(SchemaError):
        groups_from_card({CARD_KEY: [{"name": "crop"}]})


def test_a_published_vertical_card_records_its_parts_groups(tmp_path: Path) -> None:
    spec = get_spec("farmer_credit")
    schemas = {p: spec.party_schema(p) for p in spec.parties}
    refs = [PartRef(p, "run", "ab" * 32, schemas[p].feature_names) for p in spec.parties]

    card = (
        ModelRegistry(tmp_path)
        .register_vertical(
            name="farmers",
            spec_name="farmer_credit",
            combiner=combiner_graph(parties=list(spec.parties), bias=0.0),
            parts=refs,
            schemas=schemas,
            participants=dict.fromkeys(spec.parties, 10),
            rounds=1,
            strategy="vertical-lr",
            privacy_mode="none",
        )
        .card
    )

    parts = {p["party"]: p for p in card.architecture["parts"]}
    assert CARD_KEY not in parts["bank"]
    assert parts["gov"][CARD_KEY] == [spec.categoricals[0].to_dict()]
    gov = card_occlusion_groups(card, party="gov")
    assert [g for g in gov if g.categorical] == list(spec.categoricals)
    # The card, not today's spec, says what is occluded together ...
    recorded = OcclusionGroup.one_hot("main_crop", ["corn", "rice"])
    parts["gov"] = {**parts["gov"], CARD_KEY: [recorded.to_dict()]}
    changed = ModelCard.from_dict(
        {**card.to_dict(), "architecture": {**card.architecture, "parts": list(parts.values())}}
    )
    assert [g for g in card_occlusion_groups(changed, party="gov") if g.categorical] == [recorded]
    # ... and a card published before groups were recorded falls back to its spec.
    del parts["gov"][CARD_KEY]
    older = ModelCard.from_dict(
        {**card.to_dict(), "architecture": {**card.architecture, "parts": list(parts.values())}}
    )
    assert card_occlusion_groups(older, party="gov") == gov
