"""The demo's post-loan drops (participants/demo/post_loan.py): two drops split the raw
tables at the cutoff without losing or repeating a row, orders arrive again with their
later dates, and only the announced events alter readings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from participants.demo.post_loan import CUTOFF, ScriptedEvent, drop_readings, pick_loan_firms

FIRMS = ("F1", "F2")
TZ = "Asia/Shanghai"


def _raw(folder: Path) -> None:
    folder.mkdir(parents=True)
    ts = pd.date_range("2025-03-01", "2025-05-01", freq="15min", inclusive="left", tz=TZ)
    meters = pd.concat(
        [pd.DataFrame({"firm_id": f, "meter_id": "m1", "ts": ts, "kwh": np.float32(40.0)})
         for f in FIRMS]
    )  # fmt: skip
    days = pd.date_range("2025-03-01", "2025-04-30", freq="D").date
    runs = pd.DataFrame(
        {"firm_id": "F2", "machine_id": "p1",
         "run_start": pd.DatetimeIndex(pd.to_datetime(days) + pd.Timedelta("8h")).tz_localize(TZ),
         "run_end": pd.DatetimeIndex(pd.to_datetime(days) + pd.Timedelta("17h")).tz_localize(TZ)}
    )  # fmt: skip
    orders = pd.DataFrame(
        {"firm_id": ["F1", "F1"], "order_id": ["o1", "o2"], "customer_no": np.int32(7),
         "placed_on": [date(2025, 3, 20), date(2025, 4, 10)], "quantity": [100, 50],
         "unit_price_cny": 2.0, "amount_cny": [200.0, 100.0],
         "produced_on": [date(2025, 4, 15), date(2025, 4, 12)],
         "shipped_on": [date(2025, 4, 16), None], "due_on": [date(2025, 5, 20), None],
         "paid_on": [None, None]}
    )  # fmt: skip
    machines = pd.DataFrame({"firm_id": FIRMS, "machine_id": "p1", "line_id": "L1",
                             "rated_kw": np.float32(50)})  # fmt: skip
    for name, frame in (("electricity_15min", meters), ("machine_runs", runs),
                        ("erp_orders", orders), ("machines", machines)):  # fmt: skip
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if name == "erp_orders":
            table = table.cast(table.schema.set(table.schema.get_field_index("paid_on"),
                                                pa.field("paid_on", pa.date32())))  # fmt: skip
        pq.write_table(table, folder / f"{name}.parquet")


def _read(inbox: Path, kind: str, part: str) -> pd.DataFrame:
    return pq.read_table(inbox / kind / f"{part}-drop.parquet").to_pandas()


def test_two_drops_split_the_tables_at_the_cutoff_and_orders_come_again(tmp_path: Path) -> None:
    _raw(tmp_path / "raw")

    first = drop_readings(tmp_path / "raw", tmp_path / "inbox", firms=FIRMS, part="first")
    second = drop_readings(tmp_path / "raw", tmp_path / "inbox", firms=FIRMS, part="second")

    total = len(pq.read_table(tmp_path / "raw" / "electricity_15min.parquet"))
    assert first["electricity_15min"] + second["electricity_15min"] == total
    early = _read(tmp_path / "inbox", "electricity_15min", "first")["ts"]
    assert early.max() < pd.Timestamp(CUTOFF, tz=TZ)
    assert "machines" in first and "machines" not in second
    orders = _read(tmp_path / "inbox", "erp_orders", "first")
    assert orders["order_id"].tolist() == ["o1"]
    assert orders["produced_on"].isna().all() and orders["shipped_on"].isna().all()
    again = _read(tmp_path / "inbox", "erp_orders", "second").set_index("order_id")
    assert set(again.index) == {"o1", "o2"}
    assert again.loc["o1", "produced_on"] == date(2025, 4, 15)


def test_only_the_scripted_firm_and_days_are_altered(tmp_path: Path) -> None:
    _raw(tmp_path / "raw")
    events = [
        ScriptedEvent("F1", "energy_drop", date(2025, 4, 14)),
        ScriptedEvent("F2", "downtime", date(2025, 4, 21), date(2025, 4, 27)),
    ]

    drop_readings(tmp_path / "raw", tmp_path / "inbox", firms=FIRMS, part="second",
                  scripted=events)  # fmt: skip

    meters = _read(tmp_path / "inbox", "electricity_15min", "second")
    day = meters["ts"].dt.tz_convert(TZ).dt.date
    f1, f2 = meters["firm_id"] == "F1", meters["firm_id"] == "F2"
    assert np.allclose(meters.loc[f1 & (day >= date(2025, 4, 14)), "kwh"], 24.0)
    assert np.allclose(meters.loc[f1 & (day < date(2025, 4, 14)), "kwh"], 40.0)
    stopped = f2 & (day >= date(2025, 4, 21)) & (day <= date(2025, 4, 27))
    assert np.allclose(meters.loc[stopped, "kwh"], 2.0)
    assert np.allclose(meters.loc[f2 & ~stopped, "kwh"], 40.0)
    runs = _read(tmp_path / "inbox", "machine_runs", "second")
    run_days = runs["run_start"].dt.tz_convert(TZ).dt.date
    assert not ((run_days >= date(2025, 4, 21)) & (run_days <= date(2025, 4, 27))).any()
    assert len(runs) == 30 - 7
    orders = _read(tmp_path / "inbox", "erp_orders", "second").set_index("order_id")
    assert orders.loc["o1", "quantity"] == 60 and orders.loc["o2", "quantity"] == 50


def test_the_loan_firms_are_a_seeded_sample_of_the_nodes_firms(tmp_path: Path) -> None:
    _raw(tmp_path / "raw")

    picked = pick_loan_firms(tmp_path / "raw", count=1, seed=7)

    assert picked == pick_loan_firms(tmp_path / "raw", count=1, seed=7)
    assert len(picked) == 1 and picked[0] in FIRMS
    assert pick_loan_firms(tmp_path / "raw", count=5, seed=7) == list(FIRMS)
