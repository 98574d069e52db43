"""Cross-verification over the node's own raw tables (participants/crossverify/tables.py):
a firm's meters, lines and orders become its activity, from tables in memory or from the
node's raw.db after an edge pass, and the checks flag what was injected and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from models.errors import DataError
from participants.cli import app
from participants.crossverify import (
    FactoryActivity,
    activity_from_node,
    activity_from_tables,
    cross_verify,
)
from participants.edge import EdgeSettings, run_edge_pass

TZ = "Asia/Shanghai"
DAYS = 150
FIRMS = ("F-001", "F-002", "F-003")
IDLE_KWH = 12.0  # per meter-hour pair, both meters together


# --- builders ---------------------------------------------------------------------------


def _firm_frames(firm: str, seed: int) -> dict[str, pd.DataFrame]:
    """An honest firm: two meters (hourly), two lines, one order per working day shipped two
    days after it was made, and now and then part of a day's output an order cancelled
    after it was made (never shipped)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=DAYS * 24, freq="h", tz=TZ)
    working = (stamps.dayofweek < 5) & (stamps.hour >= 7) & (stamps.hour < 19)
    kwh = IDLE_KWH + working * rng.uniform(120.0, 200.0, len(stamps))
    share = rng.uniform(0.3, 0.7, len(stamps))
    meters = pd.DataFrame(
        {
            "firm_id": firm,
            "meter_id": np.repeat(["M1", "M2"], len(stamps)),
            "ts": np.concatenate([stamps, stamps]),
            "kwh": np.concatenate([kwh * share, kwh * (1 - share)]).round(3),
        }
    )
    daily = pd.Series(kwh, index=stamps).groupby(stamps.date).sum()
    units = (daily - 24 * IDLE_KWH).clip(lower=0) * 0.5 * rng.lognormal(0, 0.05, len(daily))
    units = units.round().astype(int)
    first = (units * 0.6).astype(int)
    lines = pd.DataFrame(
        {
            "firm_id": firm,
            "line_id": np.repeat(["L1", "L2"], len(units)),
            "day": np.concatenate([units.index, units.index]),
            "units_produced": np.concatenate([first, units - first]),
            "units_defective": 0,
        }
    )
    rows = []
    for k, (day, made) in enumerate(units[units > 0].items()):
        cancelled = 50 if k % 10 == 0 and made > 100 else 0  # made, then never shipped
        sold = made - cancelled
        shipped = (pd.Timestamp(day) + pd.Timedelta(days=2)).date()
        rows.append((f"SO{k:05d}", str(k % 7), sold, round(sold * 48.3, 2), day, shipped))
        if cancelled:
            rows.append((f"SO{k:05d}C", "9", cancelled, cancelled * 48.3, day, None))
    orders = pd.DataFrame(
        rows, columns=["order_id", "customer_no", "quantity", "amount_cny", "day", "shipped"]
    )
    erp = pd.DataFrame(
        {
            "firm_id": firm,
            "order_id": orders["order_id"],
            "customer_no": orders["customer_no"],
            "placed_on": orders["day"] - pd.Timedelta(days=3),
            "quantity": orders["quantity"],
            "unit_price_cny": 48.3,
            "amount_cny": orders["amount_cny"],
            "produced_on": orders["day"],
            "shipped_on": orders["shipped"],
            "due_on": None,
            "paid_on": None,
        }
    )
    return {"electricity_15min": meters, "mes_daily": lines, "erp_orders": erp}


@cache
def _park_frames() -> dict[str, pd.DataFrame]:
    frames = [_firm_frames(firm, seed) for seed, firm in enumerate(FIRMS)]
    return {kind: pd.concat([f[kind] for f in frames], ignore_index=True) for kind in frames[0]}


def _arrow(frames: Mapping[str, pd.DataFrame]) -> dict[str, pa.Table]:
    dates = ("placed_on", "produced_on", "shipped_on", "due_on", "paid_on", "day")
    tables = {}
    for kind, frame in frames.items():
        columns = {}
        for name in frame.columns:
            values = frame[name]
            if name in dates:
                days = pd.to_datetime(values).dt.date
                columns[name] = pa.array(days.where(days.notna(), None), pa.date32())
            else:
                columns[name] = pa.array(values)
        tables[kind] = pa.table(columns)
    return tables


def _park() -> dict[str, pa.Table]:
    return _arrow(_park_frames())


def _rules(activity: FactoryActivity) -> set[str]:
    return {flag.rule for flag in cross_verify(activity)}


def _inbox(root: Path, frames: Mapping[str, pd.DataFrame]) -> Path:
    inbox = root / "inbox"
    for kind, frame in frames.items():
        (inbox / kind).mkdir(parents=True, exist_ok=True)
        frame.to_csv(inbox / kind / "all.csv", index=False, lineterminator="\n")
    return inbox


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node folder after one real edge pass over the park, each order in up to three
    versions: exported before it shipped, once shipped, and once paid."""
    root = tmp_path_factory.mktemp("node")
    frames = dict(_park_frames())
    orders = frames["erp_orders"]
    before = orders.assign(shipped_on=None)
    paid = orders[orders["shipped_on"].notna()]
    paid = paid.assign(paid_on=paid["shipped_on"] + pd.Timedelta(days=30))
    frames["erp_orders"] = pd.concat([before, orders, paid], ignore_index=True)
    settings = EdgeSettings(timezone=TZ)
    done = run_edge_pass(inbox=_inbox(root, frames), node=root / "node", settle_s=0,
                         settings=settings)  # fmt: skip
    assert done.refused == {}
    assert done.stored_rows["erp_orders"] > 2 * len(orders)  # the versions are all stored
    return root / "node"


# --- the mapping ------------------------------------------------------------------------


def test_the_mapping_reproduces_the_firms_sums() -> None:
    # Arrange
    frames = _park_frames()
    meters = frames["electricity_15min"].query("firm_id == 'F-002'")
    lines = frames["mes_daily"].query("firm_id == 'F-002'")
    orders = frames["erp_orders"].query("firm_id == 'F-002'")
    local = pd.DatetimeIndex(meters["ts"]).tz_convert(TZ).tz_localize(None)
    kwh_per_reading = meters.groupby(local)["kwh"].sum()
    units_per_day = lines.groupby(pd.to_datetime(lines["day"]))["units_produced"].sum()
    made = orders[orders["produced_on"].notna()]  # the cancelled were made too

    # Act
    activity = activity_from_tables(_park(), firm="F-002", tz=TZ)

    # Assert
    assert activity.energy_kwh.index.equals(kwh_per_reading.index)
    np.testing.assert_allclose(activity.energy_kwh.to_numpy(), kwh_per_reading.to_numpy())
    assert activity.production.index.equals(units_per_day.index)
    np.testing.assert_array_equal(activity.production.to_numpy(), units_per_day.to_numpy())
    invoices = activity.invoices
    assert list(invoices.columns) == ["invoice_id", "date", "customer", "quantity", "amount"]
    assert sorted(invoices["invoice_id"]) == sorted(made["order_id"])
    assert invoices["quantity"].sum() == made["quantity"].sum() == units_per_day.sum()
    assert invoices["amount"].sum() == pytest.approx(made["amount_cny"].sum())
    by_id = invoices.set_index("invoice_id")
    first = made.iloc[0]
    assert by_id.loc[first["order_id"], "date"] == pd.Timestamp(first["produced_on"])
    assert by_id.loc[first["order_id"], "customer"] == first["customer_no"]


def test_meter_times_are_local_so_a_reading_counts_on_its_local_day() -> None:
    # Arrange: one firm's first reading, 00:00 in Shanghai, is 16:00 UTC the day before.
    tables = _park()

    # Act
    energy = activity_from_tables(tables, firm="F-001", tz=TZ).energy_kwh
    in_utc = activity_from_tables(tables, firm="F-001", tz="UTC").energy_kwh

    # Assert
    assert energy.index[0] == pd.Timestamp("2025-01-01 00:00")
    assert in_utc.index[0] == pd.Timestamp("2024-12-31 16:00")


# --- the checks on the mapped tables ----------------------------------------------------


def test_a_clean_firm_raises_no_flag() -> None:
    for firm in FIRMS:
        assert cross_verify(activity_from_tables(_park(), firm=firm, tz=TZ)) == [], firm


def test_a_duplicated_invoice_is_flagged_and_the_other_firms_are_not() -> None:
    # Arrange: F-001 books one order a second time under a new number.
    frames = dict(_park_frames())
    orders = frames["erp_orders"]
    shipped = orders[(orders["firm_id"] == "F-001") & orders["shipped_on"].notna()]
    again = shipped.iloc[[20]].assign(order_id="SO99999")
    frames["erp_orders"] = pd.concat([orders, again], ignore_index=True)
    tables = _arrow(frames)

    # Act
    flags = cross_verify(activity_from_tables(tables, firm="F-001", tz=TZ))

    # Assert
    (duplicate,) = [f for f in flags if f.rule == "duplicate_invoices"]
    day = pd.Timestamp(again["produced_on"].iloc[0]).strftime("%Y-%m-%d")
    assert (duplicate.start, duplicate.figures["invoices"]) == (day, 2.0)
    assert cross_verify(activity_from_tables(tables, firm="F-002", tz=TZ)) == []


def test_production_declared_while_the_meters_idle_is_flagged() -> None:
    # Arrange: both of F-003's meters idle through a working week; its MES does not.
    frames = dict(_park_frames())
    meters = frames["electricity_15min"].copy()
    local = pd.DatetimeIndex(meters["ts"]).tz_convert(TZ)
    week = (meters["firm_id"] == "F-003") & (local >= "2025-03-10") & (local < "2025-03-15")
    meters.loc[week, "kwh"] = IDLE_KWH / 2
    frames["electricity_15min"] = meters
    tables = _arrow(frames)

    # Act
    flags = cross_verify(activity_from_tables(tables, firm="F-003", tz=TZ))

    # Assert
    (shutdown,) = [f for f in flags if f.rule == "production_during_shutdown"]
    assert (shutdown.start, shutdown.end) == ("2025-03-10", "2025-03-14")
    assert _rules(activity_from_tables(tables, firm="F-001", tz=TZ)) == set()


# --- the node's raw store ---------------------------------------------------------------


def test_the_node_store_gives_the_same_activity_as_the_tables(node: Path) -> None:
    # Arrange
    expected = activity_from_tables(_park(), firm="F-002", tz=TZ)

    # Act
    stored = activity_from_node(node, firm="F-002", tz=TZ)

    # Assert: order versions folded, the cancelled orders still not invoiced.
    pd.testing.assert_series_equal(stored.energy_kwh, expected.energy_kwh, rtol=1e-9)
    pd.testing.assert_series_equal(stored.production, expected.production)
    pd.testing.assert_frame_equal(
        stored.invoices.reset_index(drop=True), expected.invoices.reset_index(drop=True)
    )
    assert cross_verify(stored) == []


def test_a_node_without_a_raw_store_says_to_ingest_first(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"raw\.db.*fedrisk node ingest"):
        activity_from_node(tmp_path, firm="F-001")
    assert not (tmp_path / "raw.db").exists()  # reading created nothing


def test_an_unknown_firm_is_refused_with_the_closest_one(node: Path) -> None:
    with pytest.raises(DataError, match=r"no rows for firm 'F-0002'.*did you mean 'F-002'"):
        activity_from_node(node, firm="F-0002")
    with pytest.raises(DataError, match=r"no rows for firm 'F-0002'.*did you mean 'F-002'"):
        activity_from_tables(_park(), firm="F-0002", tz=TZ)


def test_a_missing_kind_or_column_is_named() -> None:
    tables = _park()
    without_mes = {k: t for k, t in tables.items() if k != "mes_daily"}
    with pytest.raises(DataError, match=r"mes_daily: no mes_daily table"):
        activity_from_tables(without_mes, firm="F-001", tz=TZ)
    unshipped = {**tables, "erp_orders": tables["erp_orders"].drop_columns(["produced_on"])}
    with pytest.raises(DataError, match=r"erp_orders: missing columns \['produced_on'\]"):
        activity_from_tables(unshipped, firm="F-001", tz=TZ)


def test_a_firm_without_meter_readings_is_refused() -> None:
    tables = _park()
    meters = tables["electricity_15min"]
    others = meters.filter(pa.compute.not_equal(meters["firm_id"], "F-001"))
    with pytest.raises(DataError, match=r"electricity_15min.*'F-001'.*meter readings"):
        activity_from_tables({**tables, "electricity_15min": others}, firm="F-001", tz=TZ)


def test_a_bad_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'Asia/Shanghia'"):
        activity_from_tables(_park(), firm="F-001", tz="Asia/Shanghia")


# --- the command ------------------------------------------------------------------------


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["node", "cross-verify", *args])
    return result.exit_code, result.output


def test_the_command_checks_one_firm_of_the_node(node: Path, tmp_path: Path) -> None:
    # Act
    code, output = _invoke("--node", str(node), "--firm", "F-001", "--output",
                           str(tmp_path / "flags.json"))  # fmt: skip

    # Assert
    assert code == 0, output
    assert "0 flag(s) over 150 metered days for firm F-001" in output
    assert (tmp_path / "flags.json").read_text() == "[]\n"


def test_the_command_refuses_an_unknown_firm_in_one_line(node: Path) -> None:
    code, output = _invoke("--node", str(node), "--firm", "F-0001")
    assert code == 1
    assert "did you mean 'F-001'" in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give either --energy, --production and --invoices"),
        (("--energy", "e.csv", "--node", "n", "--firm", "F-001"), "both forms given"),
        (("--node", "n"), "missing --firm"),
        (("--firm", "F-001"), "missing --node"),
        (("--energy", "e.csv"), "missing --production, --invoices"),
    ],
)
def test_the_command_wants_exactly_one_form(args: tuple[str, ...], says: str) -> None:
    code, output = _invoke(*args)
    assert code == 2
    assert says in output and "Traceback" not in output
