"""The factory node's edge pipeline (participants/edge): raw files in, indicators out.

A small park from the demo's generator is dropped into the inbox in pieces; the indicators
must not depend on the pieces, must not move on a pass with nothing new, and must change
only where new readings fall. A tiny factory written by hand checks the weekly figures.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from participants.demo.factory_node import simulate_factory_node
from participants.demo.indicators import INDICATOR_COLUMNS, feature_frame
from participants.demo.profiles import factory_profile
from participants.demo.raw_tables import RawTables
from participants.demo.timeline import observation_window
from participants.edge import (
    MONTHLY_FILE,
    SUMMARY_FILE,
    WEEKLY_FILE,
    EdgePass,
    EdgeSettings,
    run_edge_pass,
)
from participants.node_cli import node_cli

KINDS = (
    "machines",
    "electricity_15min",
    "utilities_hourly",
    "climate_hourly",
    "machine_runs",
    "machine_counters_daily",
    "mes_daily",
    "erp_orders",
    "erp_purchases",
)
SHARED_IOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "iot"


# --- builders ---------------------------------------------------------------------------


@cache
def _park() -> RawTables:
    """Two firms over three months, from the demo's generator (a fraction of a second)."""
    window = observation_window(months=3)
    node = simulate_factory_node(factory_profile(0), window, np.random.default_rng(5), n_firms=2)
    return node.raw


def _plain(table: pa.Table) -> pa.Table:
    for i, column_type in enumerate(table.schema.types):
        if pa.types.is_dictionary(column_type):
            table = table.set_column(
                i, table.schema.names[i], table.column(i).cast(column_type.value_type)
            )
    return table


def _frame(kind: str) -> pd.DataFrame:
    return _plain(_park()[kind]).to_pandas()


def _csv(path: Path, frame: pd.DataFrame, *, header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if not header else "w") as handle:
        frame.to_csv(handle, index=False, header=header, lineterminator="\n")


def _drop_whole_park(inbox: Path) -> None:
    for kind in KINDS:
        _csv(inbox / kind / "all.csv", _frame(kind))


def _pass(inbox: Path, node: Path, **settings: object) -> EdgePass:
    return run_edge_pass(inbox=inbox, node=node, settle_s=0, settings=EdgeSettings(**settings))  # type: ignore[arg-type]


def _outputs(node: Path) -> tuple[bytes, bytes]:
    return (node / MONTHLY_FILE).read_bytes(), (node / WEEKLY_FILE).read_bytes()


@pytest.fixture(scope="module")
def whole_park(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node folder of one pass over the whole park, each kind as one CSV file."""
    root = tmp_path_factory.mktemp("whole-park")
    _drop_whole_park(root / "inbox")
    done = _pass(root / "inbox", root / "node")
    assert done.refused == {} and done.monthly.rows == 2 * 3
    assert done.weekly.rows == 2 * done.weekly.periods
    return root / "node"


# --- the park, in pieces and at once ----------------------------------------------------


def test_indicators_from_pieces_equal_those_from_all_rows_at_once(
    tmp_path: Path, whole_park: Path
) -> None:
    # Arrange: the readings as two files, then appended rows and a file that repeats some.
    inbox = tmp_path / "inbox"
    elec = _frame("electricity_15min")
    a, b, c = len(elec) // 3, 2 * len(elec) // 3, len(elec) - 200
    for kind in KINDS:
        if kind != "electricity_15min":
            _csv(inbox / kind / "all.csv", _frame(kind))
    _csv(inbox / "electricity_15min" / "1.csv", elec.iloc[:a])
    _csv(inbox / "electricity_15min" / "2.csv", elec.iloc[a:b])

    # Act
    first = _pass(inbox, tmp_path / "node")
    _csv(inbox / "electricity_15min" / "2.csv", elec.iloc[b:c], header=False)  # appended
    _csv(inbox / "electricity_15min" / "3.csv", elec.iloc[c - 50 :])  # 50 already stored
    second = _pass(inbox, tmp_path / "node")

    # Assert
    assert first.store.kinds["electricity_15min"].ingested == {"1.csv": a, "2.csv": b - a}
    assert second.store.kinds["electricity_15min"].ingested == {"2.csv": c - b, "3.csv": 200}
    assert second.store.kinds["electricity_15min"].duplicates["3.csv"] == 50
    assert second.stored_rows["electricity_15min"] == len(elec)
    assert _outputs(tmp_path / "node") == _outputs(whole_park)


def test_monthly_indicators_are_the_demo_reduction_of_the_same_readings(whole_park: Path) -> None:
    written = pd.read_csv(whole_park / MONTHLY_FILE)

    expected = feature_frame(_park())

    assert written["month"].tolist() == expected.month_labels * len(expected.firm_ids)
    assert written["firm_id"].astype(str).unique().tolist() == expected.firm_ids
    for name in INDICATOR_COLUMNS:
        # Readings travel as decimal text (the meter's float32 kWh become float64).
        np.testing.assert_allclose(
            written[name], expected.values[name].reshape(-1), rtol=1e-6, atol=1e-9, err_msg=name
        )
    assert written["energy_per_unit"].gt(0).all()


def test_a_pass_with_nothing_new_changes_no_indicator_byte(tmp_path: Path) -> None:
    _drop_whole_park(tmp_path / "inbox")
    _pass(tmp_path / "inbox", tmp_path / "node")
    before = _outputs(tmp_path / "node")
    stamps = [(tmp_path / "node" / f).stat().st_mtime_ns for f in (MONTHLY_FILE, WEEKLY_FILE)]

    again = _pass(tmp_path / "inbox", tmp_path / "node")

    assert _outputs(tmp_path / "node") == before
    assert [(tmp_path / "node" / f).stat().st_mtime_ns for f in (MONTHLY_FILE, WEEKLY_FILE)] == (
        stamps
    )
    assert not again.monthly.changed and not again.weekly.changed
    assert again.store.rows_new == 0
    assert sorted(again.store.kinds["mes_daily"].unchanged) == ["all.csv"]


def test_appended_rows_change_only_the_periods_they_fall_in(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _drop_whole_park(inbox)
    elec = _frame("electricity_15min")
    last_day = elec["ts"].max().normalize()
    late = elec["ts"] >= last_day - pd.Timedelta(days=1)  # the last two days of the window
    _csv(inbox / "electricity_15min" / "all.csv", elec[~late])
    _pass(inbox, tmp_path / "node")
    monthly_before = pd.read_csv(tmp_path / "node" / MONTHLY_FILE, dtype=str)
    weekly_before = pd.read_csv(tmp_path / "node" / WEEKLY_FILE, dtype=str)

    _csv(inbox / "electricity_15min" / "all.csv", elec[late], header=False)
    _pass(inbox, tmp_path / "node")

    monthly = pd.read_csv(tmp_path / "node" / MONTHLY_FILE, dtype=str)
    weekly = pd.read_csv(tmp_path / "node" / WEEKLY_FILE, dtype=str)
    last_month, last_week = monthly["month"].max(), weekly["week"].max()
    assert monthly["row_id"].tolist() == monthly_before["row_id"].tolist()
    assert weekly["row_id"].tolist() == weekly_before["row_id"].tolist()
    old_months = monthly["month"] != last_month
    old_weeks = weekly["week"] != last_week
    pd.testing.assert_frame_equal(monthly[old_months], monthly_before[old_months])
    pd.testing.assert_frame_equal(weekly[old_weeks], weekly_before[old_weeks])
    changed = weekly[~old_weeks].set_index("firm_id")
    unchanged = weekly_before[~old_weeks].set_index("firm_id")
    assert (
        changed["electricity_kwh"].astype(float) > unchanged["electricity_kwh"].astype(float)
    ).all()
    assert (
        monthly[~old_months]["energy_per_unit"] != monthly_before[~old_months]["energy_per_unit"]
    ).all()


def test_a_half_written_file_is_not_read_until_renamed(tmp_path: Path, whole_park: Path) -> None:
    inbox = tmp_path / "inbox"
    _drop_whole_park(inbox)
    mes = _frame("mes_daily")
    _csv(inbox / "mes_daily" / "all.csv", mes.iloc[:-20])
    _pass(inbox, tmp_path / "node")
    before = _outputs(tmp_path / "node")
    partial = inbox / "mes_daily" / "late.csv.partial"
    _csv(partial, mes.iloc[-20:])

    waiting = _pass(inbox, tmp_path / "node")
    while_waiting = _outputs(tmp_path / "node")
    partial.rename(inbox / "mes_daily" / "late.csv")
    renamed = _pass(inbox, tmp_path / "node")

    assert waiting.store.kinds["mes_daily"].ingested == {}
    assert while_waiting == before
    assert waiting.stored_rows["mes_daily"] == len(mes) - 20
    assert renamed.store.kinds["mes_daily"].ingested == {"late.csv": 20}
    assert _outputs(tmp_path / "node") == _outputs(whole_park)


def test_a_malformed_file_is_refused_by_name_row_and_column_and_the_others_go_in(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    _drop_whole_park(inbox)
    bad = _frame("electricity_15min").iloc[:5].astype(str)
    bad.loc[bad.index[2], "kwh"] = "12,5"  # row 4 of the file (header is row 1)
    _csv(inbox / "electricity_15min" / "bad.csv", bad)
    (inbox / "electricty_15min").mkdir()

    done = _pass(inbox, tmp_path / "node")

    refused = done.refused
    assert set(refused) == {"electricity_15min/bad.csv", "electricty_15min"}
    assert (
        "bad.csv, row 4, column 'kwh': '12,5' is not a number >= 0"
        in refused["electricity_15min/bad.csv"]
    )
    assert "did you mean 'electricity_15min'?" in refused["electricty_15min"]
    assert done.store.kinds["electricity_15min"].ingested == {
        "all.csv": len(_frame("electricity_15min"))
    }
    assert done.monthly.rows == 6
    summary = json.loads((tmp_path / "node" / SUMMARY_FILE).read_text())
    assert summary["files"]["refused"] == refused
    assert summary["rows"]["stored"]["electricity_15min"] == len(_frame("electricity_15min"))


def test_the_command_prints_the_pass_and_names_what_to_fix(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _drop_whole_park(inbox)
    (inbox / "mes_daily" / "bad.csv").write_text(
        "firm_id,line_id,day,units_produced,units_defective\nF,L1,2025-03-32,1,0\n"
    )
    args = ["ingest", "--inbox", str(inbox), "--node", str(tmp_path / "node"), "--settle-s", "0"]

    refused = CliRunner().invoke(node_cli, args)
    (inbox / "mes_daily" / "bad.csv").unlink()
    clean = CliRunner().invoke(node_cli, args)

    assert refused.exit_code == 1, refused.output
    assert "refused mes_daily/bad.csv" in refused.output
    assert "row 2, column 'day': '2025-03-32' is not a date" in refused.output
    assert "correct it and run the command again" in refused.output
    assert "monthly: 6 rows, 2 firms x 3 periods" in refused.output
    assert clean.exit_code == 0, clean.output
    assert "unchanged" in clean.output


def test_a_bad_timezone_is_one_line_at_the_command(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    args = ["ingest", "--inbox", str(tmp_path / "inbox"), "--node", str(tmp_path / "node")]

    result = CliRunner().invoke(node_cli, [*args, "--timezone", "Mars/Olympus", "--settle-s", "0"])

    assert result.exit_code == 1
    assert "error: timezone must be an IANA zone" in result.output
    assert not (tmp_path / "node").exists()


def test_parquet_files_give_the_same_indicators_and_are_read_only_when_complete(
    tmp_path: Path, whole_park: Path
) -> None:
    inbox = tmp_path / "parquet"
    for kind in KINDS:
        (inbox / kind).mkdir(parents=True)
        pq.write_table(_park()[kind], inbox / kind / "all.parquet")  # dictionaries, tz, float32
    whole = (inbox / "electricity_15min" / "all.parquet").read_bytes()
    (inbox / "electricity_15min" / "all.parquet").write_bytes(whole[: len(whole) // 2])

    unfinished = _pass(inbox, tmp_path / "node")
    (inbox / "electricity_15min" / "all.parquet").write_bytes(whole)
    finished = _pass(inbox, tmp_path / "node")
    (inbox / "machines" / "all.parquet").write_bytes(
        (inbox / "machines" / "all.parquet").read_bytes().replace(b"L1", b"L9")
    )
    changed = _pass(inbox, tmp_path / "node")

    assert unfinished.store.kinds["electricity_15min"].waiting == ["all.parquet"]
    assert finished.store.kinds["electricity_15min"].ingested == {
        "all.parquet": _park()["electricity_15min"].num_rows
    }
    assert _outputs(tmp_path / "node") == _outputs(whole_park)
    assert "cannot be appended to" in changed.refused["machines/all.parquet"]


# --- a factory small enough to check by hand --------------------------------------------

TINY = {
    "machines": "firm_id,machine_id,line_id,rated_kw\nF1,M1,L1,10\nF1,M2,L1,10\n",
    # F1 has 20 kW installed. Local time is UTC+8; 15:00Z is 23:00 local.
    "electricity_15min": (
        "firm_id,meter_id,ts,kwh,load_type\n"
        "F1,main,2025-03-03T15:00:00Z,1.0,\n"  # Mon 23:00, 4 kW = 0.2 of 20 kW: light; night
        "F1,main,2025-03-03T10:00,3.0,\n"  # 12 kW = 0.6: maximum
        "F1,main,2025-03-03T10:15,2.0,Light_Load\n"  # 8 kW would be medium; says light
        "F1,main,2025-03-04T05:45,4.0,\n"  # 16 kW = 0.8: maximum; night
        "F9,main,2025-03-04T05:45,7.0,\n"  # a firm without machines in the register
    ),
    "utilities_hourly": "firm_id,ts,water_m3,gas_m3\nF1,2025-03-03T10:00,1.0,2.0\n",
    "climate_hourly": (
        "firm_id,ts,temperature_c,humidity_pct\n"
        "F1,2025-03-03T12:00,36.5,90\n"  # too hot and humid
        "F1,2025-03-04T12:00,20,50\n"
        "F1,2025-03-10T06:00,4.0,85\n"  # next week: too cold, humid (85 counts)
    ),
    "machine_runs": (
        "firm_id,machine_id,run_start,run_end\n"
        "F1,M1,2025-03-09T23:30,2025-03-10T00:30\n"  # Sunday into Monday: half an hour each
        "F1,M2,2025-03-03T10:00,2025-03-03T10:30\n"
    ),
    "machine_counters_daily": (
        "firm_id,machine_id,day,run_hours,mould_opens\nF1,M2,2025-03-03,0.5,10\n"
    ),
    "mes_daily": "firm_id,line_id,day,units_produced,units_defective\nF1,L1,2025-03-03,40,10\n",
    "erp_orders": (
        "firm_id,order_id,customer_no,placed_on,quantity,unit_price_cny,amount_cny,"
        "produced_on,shipped_on,due_on,paid_on\n"
        "F1,SO1,7,2025-03-03,10,10,100,2025-03-03,2025-03-04,2025-03-06,\n"
        "F1,SO2,8,2025-03-05,5,12,60,2025-03-06,2025-03-07,2025-04-06,\n"
        "F1,SO1,7,2025-03-03,10,10,100,2025-03-03,2025-03-04,2025-03-06,2025-03-11\n"  # paid
    ),
    "erp_purchases": "firm_id,po_id,supplier_no,ordered_on,amount_cny\nF1,PO1,3,2025-03-03,50\n",
    # AI4I-shaped: extra process columns are ignored; failure modes and downtime optional.
    "machine_events": (
        "firm_id,machine_id,ts,torque_nm,tool_wear_min,machine_failure,twf,downtime_min\n"
        "F1,M1,2025-03-04T08:00,40.1,100,1,1,30\n"
        "F1,M2,2025-03-05T08:00,38.0,50,0,0,\n"
    ),
}


def test_weekly_indicators_of_a_tiny_factory_are_what_a_hand_computes(tmp_path: Path) -> None:
    for kind, text in TINY.items():
        (tmp_path / "inbox" / kind).mkdir(parents=True)
        (tmp_path / "inbox" / kind / "x.csv").write_text(text)

    done = _pass(tmp_path / "inbox", tmp_path / "node")

    rows = pd.read_csv(tmp_path / "node" / WEEKLY_FILE).set_index("week")
    assert done.refused == {} and done.unregistered_firms == 1
    assert rows.index.tolist() == ["2025-W10", "2025-W11"]
    assert rows["row_id"].tolist() == ["F1-2025-W10", "F1-2025-W11"]
    w10, w11 = rows.loc["2025-W10"], rows.loc["2025-W11"]
    expected_w10 = {
        "week_start": "2025-03-03",
        "metered_hours": 1.0,
        "electricity_kwh": 10.0,
        "gas_m3": 2.0,
        "energy_kwh_eq": 30.0,  # 10 kWh + 2 m³ x 10 kWh/m³
        "units_produced": 40,
        "units_defective": 10,
        "energy_per_unit": 1.0,  # 30 / 30 good units
        "defect_rate": 0.25,
        "night_share": 0.5,  # (1 + 4) / 10
        "light_load_share": 0.5,
        "medium_load_share": 0.0,
        "maximum_load_share": 0.5,
        "run_hours": 1.0,  # M2 0.5 h, M1's Sunday half hour
        "downtime_hours": 0.5,
        "idle_hours": 0.5,  # 2 machines x 1 metered hour - 1 run - 0.5 down
        "utilisation": 0.5,
        "temperature_excursion_hours": 1.0,
        "humid_hours": 1.0,
        "orders_placed": 2,
        "order_value_cny": 160.0,
        "units_shipped": 15,
        "shipped_value_cny": 160.0,
        "receivables_cny": 160.0,  # SO1 is paid on 11 March, after the week
        "receivables_overdue_cny": 100.0,  # SO1 was due on 6 March
        "receivable_overdue_ratio": 0.625,
        "machine_observations": 2,
        "failure_rate": 0.5,
        "tool_wear_failure_rate": 0.5,
        "mean_tool_wear_min": 75.0,
    }
    assert {k: w10[k] for k in expected_w10} == pytest.approx(expected_w10)
    assert w11["run_hours"] == pytest.approx(0.5)
    assert (w11["temperature_excursion_hours"], w11["humid_hours"]) == (1.0, 1.0)
    assert (w11["receivables_cny"], w11["receivables_overdue_cny"]) == (60.0, 0.0)
    assert (w11["metered_hours"], w11["orders_placed"]) == (0.0, 0)
    for empty in ("energy_per_unit", "night_share", "utilisation", "failure_rate"):
        assert np.isnan(w11[empty]), empty  # nothing to divide by that week


def test_the_kinds_are_checked_before_anything_is_stored(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for kind, text in TINY.items():
        (inbox / kind).mkdir(parents=True)
        (inbox / kind / "x.csv").write_text(text)
    (inbox / "machine_runs" / "y.csv").write_text(
        "firm_id,machine_id,run_start,run_end\nF1,M1,2025-03-05T10:00,2025-03-05T09:00\n"
    )
    (inbox / "machine_events" / "y.csv").write_text(
        "firm_id,machine_id,ts,tool_wear_min,machine_failure\nF1,M1,2025-03-06T08:00,3,2\n"
    )

    done = _pass(inbox, tmp_path / "node")

    assert "row 2, column 'run_end': comes before run_start" in done.refused["machine_runs/y.csv"]
    assert "column 'machine_failure': '2' is not 0 or 1" in done.refused["machine_events/y.csv"]
    assert done.stored_rows["machine_runs"] == 2 and done.stored_rows["machine_events"] == 2


# --- real factory data (../shared/data/iot) ---------------------------------------------


def _shared(name: str) -> Path:
    path = SHARED_IOT / name
    if not path.is_file():
        pytest.skip(f"needs {path} (see ../shared/data/README.md)")
    return path


@pytest.mark.shared_data
def test_a_real_steel_plant_year_reduces_to_its_weekly_energy_and_load_shares(
    tmp_path: Path,
) -> None:
    # The UCI steel plant: a year of 15-minute kWh with a load type. A reading is stamped
    # at the end of its interval, midnight with the date of the day it closes.
    steel = pd.read_csv(_shared("Steel_industry_data.csv"), encoding="utf-8-sig")
    end = pd.to_datetime(steel["date"], format="%d/%m/%Y %H:%M")
    end = end + pd.to_timedelta(((end.dt.hour == 0) & (end.dt.minute == 0)).astype(int), unit="D")
    start = end - pd.Timedelta(minutes=15)
    readings = pd.DataFrame(
        {
            "firm_id": "STEEL",
            "meter_id": "main",
            "ts": start.dt.strftime("%Y-%m-%dT%H:%M"),
            "kwh": steel["Usage_kWh"],
            "load_type": steel["Load_Type"],
        }
    )
    inbox = tmp_path / "inbox"
    half = len(readings) // 2
    _csv(inbox / "electricity_15min" / "h1.csv", readings.iloc[:half])
    _csv(inbox / "electricity_15min" / "h2.csv", readings.iloc[half:])
    _csv(
        inbox / "machines" / "m.csv",
        pd.DataFrame(
            {"firm_id": ["STEEL"], "machine_id": ["mill"], "line_id": ["L1"], "rated_kw": [400.0]}
        ),
    )

    done = _pass(inbox, tmp_path / "node", timezone="Asia/Seoul")

    rows = pd.read_csv(tmp_path / "node" / WEEKLY_FILE).set_index("week")
    iso = start.dt.isocalendar()
    week = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    expected = steel.assign(
        week=week.to_numpy(), night=((start.dt.hour >= 22) | (start.dt.hour < 6)).to_numpy()
    )
    by_week = expected.groupby("week")
    assert start.is_unique and done.stored_rows["electricity_15min"] == 35_040
    assert rows.index.tolist() == sorted(by_week.groups)
    np.testing.assert_allclose(rows["electricity_kwh"], by_week["Usage_kWh"].sum(), rtol=1e-12)
    np.testing.assert_allclose(rows["metered_hours"], by_week.size() / 4)
    for load, name in (
        ("Light_Load", "light"),
        ("Medium_Load", "medium"),
        ("Maximum_Load", "maximum"),
    ):
        share = by_week["Load_Type"].apply(lambda s, load=load: (s == load).mean())
        np.testing.assert_allclose(rows[f"{name}_load_share"], share, rtol=1e-12, err_msg=load)
    night = by_week.apply(lambda g: g.loc[g["night"], "Usage_kWh"].sum() / g["Usage_kWh"].sum())
    np.testing.assert_allclose(rows["night_share"], night, rtol=1e-9)


@pytest.mark.shared_data
def test_ai4i_observations_reduce_to_weekly_failure_and_tool_wear_rates(tmp_path: Path) -> None:
    # AI4I 2020 has no clock: observation n is taken to be n hours after 2025-01-06 00:00,
    # on one machine per product type (L, M, H).
    ai4i = pd.read_csv(_shared("ai4i2020.csv"), encoding="utf-8-sig")
    ts = pd.Timestamp("2025-01-06") + pd.to_timedelta(ai4i["UDI"] - 1, unit="h")
    events = pd.DataFrame(
        {
            "firm_id": "AI4I",
            "machine_id": ai4i["Type"],
            "ts": ts.dt.strftime("%Y-%m-%dT%H:%M"),
            "tool_wear_min": ai4i["Tool wear [min]"],
            "machine_failure": ai4i["Machine failure"],
            "twf": ai4i["TWF"],
            "torque_nm": ai4i["Torque [Nm]"],  # not a column of the kind: ignored
        }
    )
    inbox = tmp_path / "inbox"
    _csv(inbox / "machine_events" / "ai4i.csv", events)
    machines = pd.DataFrame(
        {"firm_id": "AI4I", "machine_id": ["L", "M", "H"], "line_id": "L1", "rated_kw": 5.0}
    )
    _csv(inbox / "machines" / "m.csv", machines)

    done = _pass(inbox, tmp_path / "node")

    rows = pd.read_csv(tmp_path / "node" / WEEKLY_FILE)
    by_week = ai4i.groupby((ai4i["UDI"] - 1) // (7 * 24))
    assert done.refused == {} and len(rows) == by_week.ngroups
    np.testing.assert_array_equal(rows["machine_observations"], by_week.size())
    np.testing.assert_allclose(rows["failure_rate"], by_week["Machine failure"].mean())
    np.testing.assert_allclose(rows["tool_wear_failure_rate"], by_week["TWF"].mean())
    np.testing.assert_allclose(rows["mean_tool_wear_min"], by_week["Tool wear [min]"].mean())
    assert rows["failure_rate"].mean() == pytest.approx(ai4i["Machine failure"].mean(), rel=0.05)


def test_the_node_folder_may_not_lie_inside_the_inbox(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()

    with pytest.raises(ValueError, match="inside the inbox"):
        _pass(tmp_path / "inbox", tmp_path / "inbox" / "node")
    shutil.rmtree(tmp_path / "inbox")
    with pytest.raises(ValueError, match="is not a folder"):
        _pass(tmp_path / "inbox", tmp_path / "node")


def test_the_same_reading_spelled_two_ways_counts_once(tmp_path: Path) -> None:
    for kind, text in TINY.items():
        (tmp_path / "inbox" / kind).mkdir(parents=True)
        (tmp_path / "inbox" / kind / "x.csv").write_text(text)
    _pass(tmp_path / "inbox", tmp_path / "node")
    before = _outputs(tmp_path / "node")
    (tmp_path / "inbox" / "electricity_15min" / "again.csv").write_text(
        "firm_id,meter_id,ts,kwh\nF1,main,2025-03-03T23:00:00+08:00,1.0\n"  # is 15:00Z
    )

    again = _pass(tmp_path / "inbox", tmp_path / "node")

    assert again.store.kinds["electricity_15min"].ingested == {"again.csv": 1}  # new text
    assert _outputs(tmp_path / "node") == before  # the same reading
