"""The demo's vertical federation files, the parties' model views, and product-model checks."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from models.errors import FederationFileError
from models.federation import load_federation
from models.specs import CROPS, get_spec
from participants.demo import VERTICAL_DEMO_MODELS, write_vertical_federation
from participants.local_data import load_eligible
from tests.participants.test_demo_support import small_scenario


@pytest.mark.parametrize("model", VERTICAL_DEMO_MODELS)
def test_vertical_federation_loads_with_the_model_spec_features_at_each_party(
    tmp_path: Path, model: str
) -> None:
    manifest = small_scenario()
    path = write_vertical_federation(manifest, tmp_path / f"{model}.toml", model=model)

    spec = load_federation(path)

    assert spec.mode == "vertical" and spec.model == model
    assert spec.vertical is not None and spec.vertical.guest == "bank"
    assert spec.vertical.hosts == ("gov",)
    for participant in spec.participants:
        assert participant.schema is not None
        expected = get_spec(model).party_schema(participant.name).features
        assert participant.schema.features == expected
        # The node's derived table parses under that schema, consent filter included.
        eligible = load_eligible(spec, participant)
        assert 0 < len(eligible.data.ids) < eligible.rows_total


def test_gov_view_one_hot_encodes_the_main_crop_from_its_own_table() -> None:
    manifest = small_scenario()
    gov = next(n for n in manifest.nodes if n.name == "gov")
    raw = pd.read_csv(manifest.path(gov.dataset("farmers").file))
    view = pd.read_csv(manifest.path(gov.dataset("farmer_credit").file))

    assert list(view["farmer_id"]) == list(raw["farmer_id"])
    onehot = view[[f"main_crop_{c}" for c in CROPS]]
    assert (onehot.sum(axis=1) == 1).all()
    assert (onehot.idxmax(axis=1).str.removeprefix("main_crop_") == raw["main_crop"]).all()
    assert "main_crop" not in view.columns


def test_product_model_refuses_a_party_with_other_features(tmp_path: Path) -> None:
    manifest = small_scenario()
    path = write_vertical_federation(manifest, tmp_path / "f.toml", model="sme_risk")
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r'\{ name = "court_cases_3y"[^}]*\}, ', "", text), encoding="utf-8")

    with pytest.raises(
        FederationFileError, match=r"gov's features differ.*'court_cases_3y' missing"
    ):
        load_federation(path)


def test_product_model_refuses_parties_it_does_not_know(tmp_path: Path) -> None:
    manifest = small_scenario()
    path = write_vertical_federation(manifest, tmp_path / "f.toml", model="farmer_credit")
    path.write_text(path.read_text(encoding="utf-8").replace('name = "gov"', 'name = "tax"'))

    with pytest.raises(FederationFileError, match="trained by parties bank, gov"):
        load_federation(path)


def test_bad_vertical_settings_are_refused(tmp_path: Path) -> None:
    manifest = small_scenario()
    with pytest.raises(ValueError, match="model must be one of"):
        write_vertical_federation(manifest, tmp_path / "f.toml", model="iot_risk")
    with pytest.raises(ValueError, match="privacy must be one of \\('he', 'none'\\)"):
        write_vertical_federation(manifest, tmp_path / "f.toml", model="sme_risk", privacy="dp")
    with pytest.raises(ValueError, match="privacy must be one of \\('dp', 'none'\\)"):
        write_vertical_federation(
            manifest, tmp_path / "f.toml", model="sme_risk", privacy="he", protocol="split-nn"
        )


def test_the_split_network_file_is_a_valid_product_federation(tmp_path: Path) -> None:
    manifest = small_scenario()
    path = write_vertical_federation(
        manifest, tmp_path / "f.toml", model="farmer_credit", privacy="dp", protocol="split-nn"
    )

    spec = load_federation(path)

    assert spec.vertical is not None and spec.vertical.protocol == "split-nn"
    assert spec.vertical.split is not None and spec.vertical.split.noised
    assert spec.name == "demo-farmer-credit-split" and spec.privacy == "dp"
