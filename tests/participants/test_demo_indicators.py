"""Factory nodes keep raw series; the indicator table is computed from them at the node."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from participants.demo import INDICATOR_COLUMNS, compute_monthly_indicators
from participants.demo.iot_truth import RISK_WEIGHTS
from tests.participants.test_demo_support import small_scenario


def _node_dir(name: str = "factory-02") -> Path:
    return small_scenario().root / name


def _seconds_between_readings(table: pd.DataFrame, column: str) -> set[int]:
    first_firm = table[table["firm_id"] == table["firm_id"].iloc[0]]
    steps = first_firm[column].sort_values().diff().dropna().dt.total_seconds()
    return set(steps.astype(int))


def test_raw_series_have_their_documented_resolution_and_types() -> None:
    raw = _node_dir() / "raw"
    electricity = pd.read_parquet(raw / "electricity_15min.parquet")
    climate = pd.read_parquet(raw / "climate_hourly.parquet")
    schema = pq.read_schema(raw / "electricity_15min.parquet")

    assert _seconds_between_readings(electricity, "ts") == {900}
    assert _seconds_between_readings(climate, "ts") == {3600}
    assert str(schema.field("kwh").type) == "float"
    assert schema.field("ts").type.tz == "Asia/Shanghai"
    assert len(electricity) == 40 * 365 * 96


def test_indicators_csv_is_recomputed_from_the_raw_series() -> None:
    written = pd.read_csv(_node_dir() / "indicators.csv")

    recomputed = compute_monthly_indicators(_node_dir() / "raw")

    assert list(recomputed.columns) == list(written.columns)
    assert (recomputed["row_id"] == written["row_id"]).all()
    assert (recomputed["label"] == written["label"]).all()
    for column in INDICATOR_COLUMNS:
        np.testing.assert_allclose(
            recomputed[column], written[column], rtol=1e-5, atol=1e-9, err_msg=column
        )


def test_changing_a_raw_series_changes_the_indicators(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(_node_dir() / "raw", raw)
    table = pq.read_table(raw / "electricity_15min.parquet").to_pandas()
    table["kwh"] = (table["kwh"] * 2).astype("float32")
    table.to_parquet(raw / "electricity_15min.parquet")
    before = compute_monthly_indicators(_node_dir() / "raw")

    after = compute_monthly_indicators(raw)

    np.testing.assert_allclose(after["night_shift_share"], before["night_shift_share"])
    assert (after["energy_per_unit"] > 1.5 * before["energy_per_unit"]).all()


def test_no_ground_truth_leaks_into_any_written_table() -> None:
    manifest = small_scenario()
    hidden = {"score", "hazard", "risk", "distress", *RISK_WEIGHTS}
    for node in manifest.nodes:
        for dataset in node.datasets:
            columns = set(pd.read_csv(manifest.path(dataset.file), nrows=1).columns)
            assert not columns & hidden, (node.name, dataset.name)
