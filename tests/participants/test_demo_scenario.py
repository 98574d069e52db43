"""The scenario's layout, manifest and consent records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from consent import SQLiteConsentStore
from participants.demo import (
    INDICATOR_COLUMNS,
    ScenarioError,
    generate_scenario,
    is_valid_uscc,
    read_manifest,
)
from participants.demo.consent_records import CONSENT_GAP_SHARES
from participants.demo.raw_tables import RAW_TABLE_NAMES
from tests.participants.test_demo_support import SMALL, small_scenario

FACTORIES = [f"factory-{i:02d}" for i in range(1, 7)]


def _files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def test_each_node_folder_holds_only_its_own_files() -> None:
    manifest = small_scenario()
    root = manifest.root
    raw = {f"raw/{name}.parquet" for name in RAW_TABLE_NAMES} | {"raw/metadata.json"}

    assert {p.name for p in root.iterdir()} == {
        "bank",
        "gov",
        "coordinator",
        "manifest.json",
        *FACTORIES,
    }
    # Each vertical party's stored tables plus the model inputs it derived from them.
    party = {"farmers.csv", "smes.csv", "farmer_credit.csv", "sme_risk.csv", "consent.db"}
    assert _files(root / "bank") == party
    assert _files(root / "gov") == party
    assert _files(root / "coordinator") == {"iot_eval.csv"}
    for name in FACTORIES:
        assert _files(root / name) == {"indicators.csv", "consent.db", *raw}


def test_parties_hold_their_own_columns_and_only_the_bank_has_labels() -> None:
    root = small_scenario().root
    bank = pd.read_csv(root / "bank" / "farmers.csv")
    gov = pd.read_csv(root / "gov" / "farmers.csv")

    assert "label" in bank.columns
    assert "label" not in gov.columns
    assert set(bank.columns) & set(gov.columns) == {"farmer_id"}
    assert bank["farmer_id"].str.fullmatch(r"F\d{9}").all()


def test_vertical_overlap_is_about_ninety_percent_plus_gov_only_subjects() -> None:
    root = small_scenario().root
    for dataset, id_column in (("farmers", "farmer_id"), ("smes", "firm_id")):
        bank = set(pd.read_csv(root / "bank" / f"{dataset}.csv")[id_column])
        gov = set(pd.read_csv(root / "gov" / f"{dataset}.csv")[id_column])

        assert 0.85 <= len(bank & gov) / len(bank) <= 0.95
        assert len(gov - bank) > 0.05 * len(bank)


def test_firm_ids_are_valid_and_every_firm_lives_at_one_node() -> None:
    manifest = small_scenario()
    seen: set[str] = set()
    for node in manifest.factory_nodes:
        firms = set(pd.read_csv(manifest.path(node.dataset("indicators").file))["firm_id"])
        assert all(is_valid_uscc(f) for f in firms)
        assert not firms & seen
        seen |= firms
    eval_firms = set(pd.read_csv(manifest.path(manifest.eval_file))["firm_id"])
    smes = set(pd.read_csv(manifest.root / "gov" / "smes.csv")["firm_id"])

    assert not eval_firms & seen
    assert not smes & seen
    assert all(is_valid_uscc(f) for f in smes)


def test_indicator_tables_have_the_documented_columns_and_base_rate() -> None:
    manifest = small_scenario()
    evaluation = pd.read_csv(manifest.path(manifest.eval_file))
    node = pd.read_csv(manifest.path(manifest.factory_nodes[0].dataset("indicators").file))
    expected = ["row_id", "firm_id", "month", *INDICATOR_COLUMNS, "label"]

    assert list(node.columns) == expected
    assert list(evaluation.columns) == expected
    assert (node["row_id"] == node["firm_id"] + "-" + node["month"]).all()
    assert node["row_id"].is_unique
    assert 0.08 <= evaluation["label"].mean() <= 0.25


def test_manifest_round_trips_and_matches_the_files() -> None:
    manifest = small_scenario()

    reread = read_manifest(manifest.root)

    assert reread == manifest
    assert manifest.seed == 7
    assert manifest.as_of.isoformat() == "2026-06-30T00:00:00+00:00"
    assert len(manifest.factory_nodes) == 6
    for node in manifest.nodes:
        for dataset in node.datasets:
            frame = pd.read_csv(manifest.path(dataset.file))
            assert len(frame) == dataset.rows
            assert set(dataset.feature_names) <= set(frame.columns)
            assert (dataset.label_column in frame.columns) == (dataset.label_column is not None)


@pytest.mark.parametrize("node_name", ["bank", "gov", "factory-01", "factory-06"])
def test_consent_gaps_have_the_stated_shares(node_name: str) -> None:
    manifest = small_scenario()
    node = manifest.node(node_name)
    assert node.consent_db is not None
    # A subject appears in a stored table and in the model view derived from it: once here.
    subjects = list(
        dict.fromkeys(
            s
            for dataset in node.datasets
            for s in pd.read_csv(manifest.path(dataset.file))[dataset.subject_column].unique()
        )
    )
    if node.kind == "factory":  # firms in default from the first month have no rows
        subjects = list({*subjects, *_raw_firms(manifest.path(node.directory))})

    with SQLiteConsentStore(manifest.path(node.consent_db)) as store:
        reasons = store.exclusion_reasons(
            subjects, purpose="model_training", categories=node.categories, at=manifest.as_of
        )
        active = store.active_subjects(
            purpose="model_training", categories=node.categories, at=manifest.as_of
        )
        purposes = {e.grant.purpose for e in store.events() if e.grant is not None}

    n = len(subjects)
    for reason, share in CONSENT_GAP_SHARES.items():
        assert reasons[reason] / n == pytest.approx(share, abs=0.02), reason
    assert set(reasons) == set(CONSENT_GAP_SHARES)
    assert len(active) == n - sum(reasons.values())
    assert purposes == {"model_training", "credit_scoring", "marketing"}


def _raw_firms(node_dir: Path) -> set[str]:
    machines = pd.read_parquet(node_dir / "raw" / "machines.parquet")
    return set(machines["firm_id"].astype(str))


def test_generation_refuses_a_non_empty_folder_and_reports_progress(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not ours")
    steps: list[tuple[str, float]] = []

    with pytest.raises(ScenarioError):
        generate_scenario(tmp_path, n_farmers=5, n_smes=5, n_factories=1, firms_per_factory=2)
    generate_scenario(
        tmp_path,
        n_farmers=5,
        n_smes=5,
        n_factories=1,
        firms_per_factory=2,
        n_eval_firms=2,
        overwrite=True,
        progress=lambda step, done: steps.append((step, done)),
    )

    assert (tmp_path / "keep.txt").exists()
    assert [s for s, _ in steps] == ["bank", "gov", "factory-01", "coordinator"]
    assert steps[-1][1] == 1.0


def test_small_scenario_settings_are_what_the_tests_assume() -> None:
    manifest = small_scenario()

    assert manifest.node("bank").dataset("farmers").rows == SMALL["n_farmers"]
    assert all(n.consent["subjects"] == SMALL["firms_per_factory"] for n in manifest.factory_nodes)
