"""Model specs (models/specs.py)."""

from __future__ import annotations

import re

import pytest

from models.errors import ModelNotFoundError
from models.nets import build_network
from models.specs import ID_COLUMN, LABEL_COLUMN, MODEL_SPECS, get_spec, one_hot_name, spec_names

IOT_FEATURES = (
    "energy_per_unit",
    "utilisation",
    "energy_trend",
    "output_order_ratio",
    "shipment_order_ratio",
    "receivable_overdue_ratio",
    "customer_concentration",
    "supplier_concentration",
    "defect_rate",
    "night_share",
    "payment_delay_days",
    "order_growth",
    "downtime_share",
    "temperature_excursions",
)
PRODUCT_MODELS = ("iot_risk", "farmer_credit", "sme_risk")


def test_known_specs_are_registered() -> None:
    assert spec_names() == ("farmer_credit", "iot_risk", "logistic", "mlp", "sme_risk")


def test_iot_risk_uses_the_edge_indicator_names() -> None:
    spec = get_spec("iot_risk")

    assert spec.schema is not None
    assert spec.schema.feature_names == IOT_FEATURES
    assert all(feature.type == "float" for feature in spec.schema.features)
    assert spec.mode == "horizontal"
    assert spec.architecture == "mlp"


def test_unknown_spec_lists_known_names() -> None:
    with pytest.raises(ModelNotFoundError, match="known models: farmer_credit, iot_risk") as info:
        get_spec("iot-risk")

    assert isinstance(info.value, LookupError)
    assert "did you mean 'iot_risk'" in str(info.value)


@pytest.mark.parametrize("name", PRODUCT_MODELS)
def test_product_specs_explain_and_categorise_every_feature(name: str) -> None:
    spec = get_spec(name)
    assert spec.schema is not None

    features = spec.schema.feature_names

    assert spec.schema.id == ID_COLUMN
    assert spec.schema.label == LABEL_COLUMN
    assert set(spec.reason_codes) == set(features)
    assert all(phrase and len(phrase) <= 60 for phrase in spec.reason_codes.values())
    assert set(spec.feature_categories) == set(features)
    assert set(spec.data_categories) == set(spec.feature_categories.values())


@pytest.mark.parametrize("name", ["farmer_credit", "sme_risk"])
def test_vertical_specs_split_features_between_bank_and_gov(name: str) -> None:
    spec = get_spec(name)
    assert spec.schema is not None

    bank, gov = spec.party_schema("bank"), spec.party_schema("gov")

    assert spec.mode == "vertical"
    assert spec.parties == ("bank", "gov")
    assert bank.label == LABEL_COLUMN
    assert gov.label is None
    assert bank.feature_names + gov.feature_names == spec.schema.feature_names
    assert all(
        c.startswith("bank.") for c in (spec.feature_categories[f] for f in bank.feature_names)
    )
    assert all(
        c.startswith("gov.") for c in (spec.feature_categories[f] for f in gov.feature_names)
    )


def test_unknown_party_is_refused() -> None:
    with pytest.raises(ModelNotFoundError, match="parties: bank, gov"):
        get_spec("sme_risk").party_schema("tax")


def test_bring_your_own_specs_have_no_schema() -> None:
    assert get_spec("logistic").schema is None
    assert get_spec("mlp").schema is None
    assert get_spec("mlp").reason_phrase("cash_ratio") == "unusual value of cash ratio"


@pytest.mark.parametrize("name", sorted(MODEL_SPECS))
def test_every_spec_builds_its_network(name: str) -> None:
    spec = get_spec(name)
    width = len(spec.schema.features) if spec.schema is not None else 4

    net = build_network(spec.architecture, n_features=width, hidden=spec.hidden, seed=0)

    assert sum(p.numel() for p in net.parameters()) > width


@pytest.mark.parametrize("name", PRODUCT_MODELS)
def test_every_reason_phrase_speaks_for_one_feature_or_one_own_category(name: str) -> None:
    """Enumerates every reason a product model can give: one per occlusion group (and, for
    a categorical, one per category), each naming the subject's own category only."""
    spec = get_spec(name)
    assert spec.schema is not None

    groups = spec.occlusion_groups()
    produced: dict[str, list[tuple[str, str | None]]] = {}
    for group in groups:
        for level in group.levels or (None,):
            produced.setdefault(spec.group_phrase(group.name, level), []).append(
                (group.name, level)
            )

    # Every feature is occluded in exactly one group; a categorical's one-hot columns together.
    assert sorted(c for g in groups for c in g.columns) == sorted(spec.schema.feature_names)
    for group in spec.categoricals:
        assert group in groups
        assert group.columns == tuple(one_hot_name(group.name, lv) for lv in group.levels)
    # No two reasons read the same.
    assert all(len(sources) == 1 for sources in produced.values()), produced
    by_name = {g.name: g for g in groups}
    for phrase, [(group_name, level)] in produced.items():
        group = by_name[group_name]
        words = set(re.findall(r"[\w-]+", phrase))
        if group.categorical:
            assert level is not None and phrase.endswith(f": {level}"), phrase
            assert not words & (set(group.levels) - {level}), phrase
        else:
            # "label: level" is a category's phrase: a single feature never reads like one.
            assert ":" not in phrase, phrase
        assert phrase and len(phrase) <= 60


def test_categorical_phrases_name_the_subjects_own_category() -> None:
    farmer, sme = get_spec("farmer_credit"), get_spec("sme_risk")

    assert [g.name for g in farmer.categoricals] == ["main_crop"]
    assert [g.name for g in sme.categoricals] == ["industry", "tax_credit_grade"]
    assert farmer.group_phrase("main_crop", "fruit") == "main crop: fruit"
    assert sme.group_phrase("tax_credit_grade", "A") == "tax credit grade: A"
    assert farmer.group_phrase("main_crop", None) == "unusual value of main crop"
    assert farmer.group_phrase("planted_area_mu", None) == "small planted area"
    assert get_spec("iot_risk").categoricals == ()
    gov = farmer.occlusion_groups(farmer.party_schema("gov").feature_names)
    assert [g.name for g in gov][:3] == ["planted_area_mu", "main_crop", "livestock_head"]
