"""Tabular schemas: validation, dict round-trips, the canonical hash and `compare` wording."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from models.errors import ModelsError, SchemaError
from models.schema import FeatureSpec, TabularSchema


def _feature(name: str, type_: str = "float", **bounds: float) -> FeatureSpec:
    return FeatureSpec(name=name, type=type_, **bounds)  # type: ignore[arg-type]


def _schema(*features: FeatureSpec, label: str | None = "y") -> TabularSchema:
    features = features or (
        _feature("x1", "float", min=-1.0, max=1.0),
        _feature("x2", "int", min=0, max=10),
        _feature("x3", "bool"),
    )
    return TabularSchema(id="id", label=label, features=features)


# --- construction ----------------------------------------------------------------------


def test_feature_names_follow_declaration_order() -> None:
    assert _schema().feature_names == ("x1", "x2", "x3")


def test_bounds_are_stored_as_floats() -> None:
    spec = _feature("x", "int", min=0, max=5)
    assert isinstance(spec.min, float)
    assert isinstance(spec.max, float)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "x", "type": "flaot"}, "did you mean 'float'"),
        ({"name": "", "type": "float"}, "non-empty string"),
        ({"name": "x", "type": "float", "min": 2.0, "max": 1.0}, "min 2.0 is above max 1.0"),
        ({"name": "x", "type": "bool", "min": 0.0}, "bool feature takes no min/max"),
        ({"name": "x", "type": "float", "max": float("inf")}, "max must be finite"),
        ({"name": "x", "type": "float", "min": "0"}, "min must be a number"),
        ({"name": "x", "type": "float", "min": True}, "min must be a number"),
    ],
)
def test_feature_spec_rejects_bad_values(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        FeatureSpec(**kwargs)


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: TabularSchema(id="id", label="y", features=()), "at least one feature"),
        (lambda: _schema(_feature("a"), _feature("a")), "'a' appears twice"),
        (lambda: _schema(_feature("id")), "also the id or label"),
        (lambda: _schema(_feature("y")), "also the id or label"),
        (lambda: TabularSchema(id="id", label="id", features=(_feature("a"),)), "also the id"),
        (lambda: TabularSchema(id="", label=None, features=(_feature("a"),)), "id column"),
    ],
)
def test_schema_rejects_inconsistent_columns(build: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        build()


def test_schema_errors_belong_to_the_package_and_to_value_error() -> None:
    assert issubclass(SchemaError, ModelsError)
    assert issubclass(SchemaError, ValueError)


def test_feature_lookup_suggests_a_close_name() -> None:
    with pytest.raises(SchemaError, match="did you mean 'x1'"):
        _schema().feature("x11")


def test_without_label_keeps_features_and_drops_label() -> None:
    schema = _schema()

    unlabelled = schema.without_label()

    assert unlabelled.label is None
    assert unlabelled.features == schema.features
    assert unlabelled.hash() != schema.hash()


# --- dict round trip -------------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    schema = _schema()

    again = TabularSchema.from_dict(json.loads(json.dumps(schema.to_dict())))

    assert again == schema
    assert again.hash() == schema.hash()


def test_to_dict_omits_unset_label_and_bounds() -> None:
    data = _schema(_feature("a"), label=None).to_dict()

    assert data == {"id": "id", "features": [{"name": "a", "type": "float"}]}


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"id": "id", "lable": "y", "features": [{"name": "a", "type": "float"}]}, "lable",
         "did you mean 'label'"),
        ({"label": "y", "features": [{"name": "a", "type": "float"}]}, "id", "missing"),
        ({"id": "id", "features": []}, "features", "non-empty list"),
        ({"id": 3, "features": [{"name": "a", "type": "float"}]}, "id", "must be a string"),
        ({"id": "id", "features": [{"name": "a"}]}, "features[0].type", "missing"),
        ({"id": "id", "features": [{"name": "a", "type": "float"}, {"name": "b", "typ": "int"}]},
         "features[1].typ", "did you mean 'type'"),
        ({"id": "id", "features": [{"name": "a", "type": "float"}, {"name": "b", "type": "str"}]},
         "features[1]", "type must be one of float, int, bool"),
        ({"id": "id", "features": ["a"]}, "features[0]", "must be a table"),
    ],
)  # fmt: skip
def test_from_dict_errors_name_the_key(data: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment) as caught:
        TabularSchema.from_dict(data)

    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


# --- hash ------------------------------------------------------------------------------


def test_hash_is_pinned_for_a_fixed_schema() -> None:
    # Pinned so that an accidental change of the canonical form shows up: every model
    # card and every participant handshake depends on it.
    schema = TabularSchema(
        id="id",
        label="y",
        features=(_feature("x0", "float", min=-10.0, max=10.0), _feature("x1", "int")),
    )

    assert schema.hash() == "270361bd2f255058f49db3e9a7dee6f26e36f344983990ac3b68469e84e39ffc"


def test_hash_is_hex_sha256_and_stable_across_equal_builds() -> None:
    a = _schema(_feature("x", "int", min=0, max=1))
    feature = {"name": "x", "type": "int", "min": 0.0, "max": 1}
    b = TabularSchema.from_dict({"id": "id", "label": "y", "features": [feature]})

    assert a.hash() == b.hash()
    assert len(a.hash()) == 64
    int(a.hash(), 16)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: replace(s, features=tuple(reversed(s.features))),
        lambda s: replace(s, features=(_feature("x1", "int", min=-1, max=1), *s.features[1:])),
        lambda s: replace(s, features=(_feature("x1", min=-1.0, max=2.0), *s.features[1:])),
        lambda s: replace(s, features=(_feature("x1", min=-1.0), *s.features[1:])),
        lambda s: replace(s, features=(_feature("z1", min=-1.0, max=1.0), *s.features[1:])),
        lambda s: replace(s, label="default"),
        lambda s: replace(s, id="customer"),
    ],
    ids=["order", "type", "range", "open-range", "name", "label", "id"],
)
def test_hash_changes_with_order_type_range_and_names(change: Any) -> None:
    schema = _schema()

    assert change(schema).hash() != schema.hash()


# --- compare ---------------------------------------------------------------------------


def test_compare_equal_schemas_is_empty() -> None:
    assert _schema().compare(_schema()) == []


def test_compare_names_missing_and_unexpected_features() -> None:
    expected = _schema()
    other = _schema(_feature("x1", min=-1.0, max=1.0), _feature("x2", "int", min=0, max=10),
                    _feature("x4"))  # fmt: skip

    assert expected.compare(other) == ["feature 'x3' missing", "feature 'x4' unexpected"]


def test_compare_names_type_and_range_differences() -> None:
    expected = _schema()
    other = _schema(_feature("x1", "int", min=-1, max=1), _feature("x2", "int", min=0, max=5),
                    _feature("x3", "bool"))  # fmt: skip

    assert expected.compare(other) == [
        "feature 'x1' type float vs int",
        "range of 'x2' differs: [0.0, 10.0] vs [0.0, 5.0]",
    ]


def test_compare_names_order_id_and_label_differences() -> None:
    expected = _schema()
    other = TabularSchema(id="cust", label=None, features=tuple(reversed(expected.features)))

    assert expected.compare(other) == [
        "id column 'id' vs 'cust'",
        "label 'y' vs none",
        "feature order differs: position 1 is 'x1' vs 'x3'",
    ]
