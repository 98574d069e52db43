"""The iot_real benchmark's data: node splits, labels, features and the test sets.

Fast: no training. Needs ../shared/data (the steel plant's readings and AI4I 2020).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import iot_real
from bench.common import BenchError, FedSettings, write_federation

pytestmark = pytest.mark.shared_data

#: Source columns that give a label away or name a row, never features.
STEEL_LEAKS = ("Load_Type", "CO2(tCO2)", "NSM", "WeekStatus", "Day_of_week", "date")
AI4I_LEAKS = ("Machine failure", "TWF", "HDF", "PWF", "OSF", "RNF", "UDI", "Product ID", "Type")


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"this test needs {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="module")
def steel_raw() -> pd.DataFrame:
    return pd.read_csv(_require(iot_real.STEEL), encoding="utf-8-sig")


@pytest.fixture(scope="module")
def ai4i_raw() -> pd.DataFrame:
    return pd.read_csv(_require(iot_real.AI4I), encoding="utf-8-sig")


@pytest.fixture(scope="module")
def steel() -> iot_real.NodeSplit:
    return iot_real.steel_split(_require(iot_real.STEEL))


@pytest.fixture(scope="module")
def ai4i() -> iot_real.NodeSplit:
    return iot_real.ai4i_split(_require(iot_real.AI4I))


def _ids(split: iot_real.NodeSplit) -> list[np.ndarray]:
    return [rows["id"].to_numpy() for rows in (*split.nodes.values(), split.test)]


@pytest.mark.parametrize("name", ["steel", "ai4i"])
def test_nodes_and_test_set_are_disjoint_and_cover_every_row(
    name: str, request: pytest.FixtureRequest
) -> None:
    split: iot_real.NodeSplit = request.getfixturevalue(name)
    raw: pd.DataFrame = request.getfixturevalue(f"{name}_raw")

    ids = np.concatenate(_ids(split))

    assert len(ids) == len(raw)
    assert len(np.unique(ids)) == len(ids)


def test_steel_factories_are_two_month_blocks_and_test_days_every_fifth(
    steel: iot_real.NodeSplit, steel_raw: pd.DataFrame
) -> None:
    stamps = pd.to_datetime(steel_raw["date"], format="%d/%m/%Y %H:%M")
    month = pd.Series(stamps.dt.month.to_numpy(), index=np.arange(1, len(steel_raw) + 1))
    day = pd.Series(stamps.dt.day.to_numpy(), index=month.index)

    assert len(steel.nodes) == 12 // iot_real.MONTHS_PER_FACTORY
    for rows in steel.nodes.values():
        months = set(month[rows["id"]].tolist())
        assert len(months) == iot_real.MONTHS_PER_FACTORY
        assert max(months) - min(months) == iot_real.MONTHS_PER_FACTORY - 1
        assert (day[rows["id"]] % iot_real.TEST_DAY_EVERY != 0).all()
    assert (day[steel.test["id"]] % iot_real.TEST_DAY_EVERY == 0).all()
    assert set(month[steel.test["id"]].tolist()) == set(range(1, 13))  # every month tested


def test_steel_label_is_the_maximum_load_interval(
    steel: iot_real.NodeSplit, steel_raw: pd.DataFrame
) -> None:
    expected = (steel_raw["Load_Type"] == "Maximum_Load").to_numpy().astype(int)
    rows = pd.concat([*steel.nodes.values(), steel.test])

    assert (rows["y"].to_numpy() == expected[rows["id"].to_numpy() - 1]).all()
    assert 0 < rows["y"].mean() < 1


def test_ai4i_nodes_hold_one_machine_type_each_and_the_test_set_every_stratum(
    ai4i: iot_real.NodeSplit, ai4i_raw: pd.DataFrame
) -> None:
    kind = ai4i_raw.set_index("UDI")["Type"]
    failed = ai4i_raw.set_index("UDI")[iot_real.AI4I_LABEL]

    for name, rows in ai4i.nodes.items():
        assert set(kind[rows["id"]].tolist()) == {name.removeprefix("type-").upper()}
        assert (rows["y"].to_numpy() == failed[rows["id"]].to_numpy()).all()
    for machine in iot_real.AI4I_TYPES:
        for label in (0, 1):
            stratum = ai4i_raw[(ai4i_raw["Type"] == machine) & (failed.to_numpy() == label)]
            held = ai4i.test["id"].isin(stratum["UDI"]).sum()
            assert held == round(iot_real.AI4I_TEST_SHARE * len(stratum))


def test_ai4i_test_set_depends_on_the_seed_only(ai4i: iot_real.NodeSplit) -> None:
    same = iot_real.ai4i_split(iot_real.AI4I, seed=iot_real.AI4I_SEED)
    other = iot_real.ai4i_split(iot_real.AI4I, seed=iot_real.AI4I_SEED + 1)

    assert same.test["id"].tolist() == ai4i.test["id"].tolist()
    assert other.test["id"].tolist() != ai4i.test["id"].tolist()


@pytest.mark.parametrize(
    ("sources", "leaks"),
    [(iot_real.STEEL_FEATURES, STEEL_LEAKS), (iot_real.AI4I_FEATURES, AI4I_LEAKS)],
    ids=["steel", "ai4i"],
)
def test_features_come_from_no_label_leaking_column(
    sources: dict[str, tuple[object, ...]], leaks: tuple[str, ...]
) -> None:
    assert sources  # there are features
    assert not set(sources) & set(leaks)


@pytest.mark.parametrize(
    ("name", "leaks"), [("steel", STEEL_LEAKS), ("ai4i", AI4I_LEAKS)], ids=["steel", "ai4i"]
)
def test_no_label_leaking_column_is_a_feature(
    name: str, leaks: tuple[str, ...], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    split: iot_real.NodeSplit = request.getfixturevalue(name)

    files = iot_real.write_tables(split, tmp_path)

    for path in files.values():
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header == ["id", "y", *split.features]
    assert not set(split.features) & set(leaks)
    assert "y" not in split.features and "id" not in split.features
    rows = pd.concat([*split.nodes.values(), split.test])
    for feature in split.features:  # none is the label under another name
        assert not (rows[feature].to_numpy() == rows["y"].to_numpy()).all()


@pytest.mark.parametrize("name", ["steel", "ai4i"])
def test_the_federation_file_accepts_every_table(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from models.federation import load_federation
    from models.resolve import training_schema
    from models.tabular import load_table

    split: iot_real.NodeSplit = request.getfixturevalue(name)
    files = iot_real.write_tables(split, tmp_path / "tables")
    toml = write_federation(
        tmp_path / "federation.toml",
        name=f"test-{name}",
        model="mlp",
        privacy="none",
        settings=FedSettings(
            rounds=1, local_epochs=1, batch_size=64, learning_rate=0.1, hidden=(4,)
        ),
        feature_names=split.features,
        participants={n: files[n] for n in split.nodes},
        evaluation=files["test"],
        keys_dir=tmp_path / "keys",
    )

    schema = training_schema(load_federation(toml))

    for node, path in files.items():  # units fit the file's bounds: no DataError
        rows = split.test if node == "test" else split.nodes[node]
        assert load_table(path, schema).features.shape == (len(rows), len(split.features))


def test_a_missing_data_file_is_a_bench_error(tmp_path: Path) -> None:
    missing = tmp_path / "iot" / "Steel_industry_data.csv"

    with pytest.raises(BenchError, match=r"Steel_industry_data\.csv"):
        iot_real.steel_split(missing)
    with pytest.raises(BenchError, match=r"ai4i2020\.csv"):
        iot_real.ai4i_split(tmp_path / "iot" / "ai4i2020.csv")


def test_the_part_fails_before_training_without_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iot_real, "STEEL", tmp_path / "missing" / "Steel_industry_data.csv")
    work = tmp_path / "work"

    with pytest.raises(BenchError, match=r"shared/data/README\.md"):
        iot_real.run(work, quick=True)
    assert not work.exists()


def test_auc_standard_error_at_chance_is_the_mann_whitney_null() -> None:
    positives, negatives = 68, 1932

    error = iot_real.auc_standard_error(0.5, positives=positives, negatives=negatives)

    null = (positives + negatives + 1) / (12 * positives * negatives)
    assert error == pytest.approx(np.sqrt(null), rel=1e-12)
    better = iot_real.auc_standard_error(0.5, positives=4 * positives, negatives=negatives)
    assert better < error
    with pytest.raises(ValueError, match="positives"):
        iot_real.auc_standard_error(0.9, positives=0, negatives=negatives)


def test_a_quick_run_thins_the_nodes_but_not_the_test_set(ai4i: iot_real.NodeSplit) -> None:
    quick = iot_real.thinned(ai4i, step=4)

    assert quick.test is ai4i.test
    for name, rows in quick.nodes.items():
        assert len(rows) == -(-len(ai4i.nodes[name]) // 4)
        assert set(rows["id"]) <= set(ai4i.nodes[name]["id"])
    with pytest.raises(ValueError, match="step"):
        iot_real.thinned(ai4i, step=0)
