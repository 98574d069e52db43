"""The post-loan monitor fed from the node's raw store (participants/monitoring/node_readings):
the readings are the per-slot sums of what was ingested, the machines' runs give the
running state, only newer slots are read again, and ``fedrisk node monitor --node`` raises
what the equivalent readings CSV raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from models.errors import DataError
from participants.edge import EdgeError, EdgeSettings, run_edge_pass
from participants.monitoring import readings_from_node

NORTH, SOUTH = "plant-north", "plant-south"
START = pd.Timestamp("2025-01-06")  # a Monday, local time at the node (Asia/Shanghai)
SHANGHAI = "Asia/Shanghai"
SLOT = pd.Timedelta(minutes=15)


# --- builders ---------------------------------------------------------------------------


def _electricity(firm: str, meter: str, *, days: int, seed: int, utc: bool) -> pd.DataFrame:
    """One meter's day-shift readings; ``utc``: timestamps written in UTC with ``Z``."""
    rng = np.random.default_rng(seed)
    local = pd.date_range(START, periods=days * 96, freq="15min")
    shift = (local.hour >= 7) & (local.hour < 19) & (local.dayofweek < 5)
    kwh = np.round(2.0 + shift * rng.uniform(20.0, 40.0, len(local)), 3)
    ts = (
        local.tz_localize(SHANGHAI).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        if utc
        else local.strftime("%Y-%m-%d %H:%M:%S")
    )
    return pd.DataFrame({"firm_id": firm, "meter_id": meter, "ts": ts, "kwh": kwh})


def _runs(firm: str, *, days: int) -> pd.DataFrame:
    """Weekday runs of two machines, starting and ending inside slots (07:05 to 18:50)."""
    rows = []
    for day in pd.date_range(START, periods=days, freq="D"):
        if day.dayofweek < 5:
            at = {name: day + pd.Timedelta(name) for name in ("7h5min", "12h", "13h", "18h50min")}
            rows.append((firm, "press-1", at["7h5min"], at["12h"]))
            rows.append((firm, "press-2", at["13h"], at["18h50min"]))
    frame = pd.DataFrame(rows, columns=["firm_id", "machine_id", "run_start", "run_end"])
    for column in ("run_start", "run_end"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame


def _events(firm: str) -> pd.DataFrame:
    """Two failures in one slot and one in another; a non-failure observation."""
    stamps = ["2025-01-06 09:01:00", "2025-01-06 09:14:00", "2025-01-07 15:30:00",
              "2025-01-07 16:00:00"]  # fmt: skip
    return pd.DataFrame(
        {
            "firm_id": firm,
            "machine_id": ["press-1", "press-2", "press-1", "press-1"],
            "ts": stamps,
            "tool_wear_min": [10.0, 20.0, 30.0, 40.0],
            "machine_failure": [1, 1, 1, 0],
        }
    )


def _write(inbox: Path, kind: str, name: str, frame: pd.DataFrame) -> None:
    (inbox / kind).mkdir(parents=True, exist_ok=True)
    frame.to_csv(inbox / kind / name, index=False, lineterminator="\n")


def _ingest(inbox: Path, node: Path) -> None:
    done = run_edge_pass(inbox=inbox, node=node, settle_s=0, settings=EdgeSettings())
    assert done.refused == {}


def _small_inbox(inbox: Path, *, days: int = 3) -> dict[str, pd.DataFrame]:
    """North: two meters (one in UTC), machine runs and events; south: one meter only.
    Ten of north's readings are delivered twice, their timestamps spelled differently."""
    frames = {
        "electricity_15min": pd.concat(
            [
                _electricity(NORTH, "m1", days=days, seed=1, utc=False),
                _electricity(NORTH, "m2", days=days, seed=2, utc=True),
                _electricity(SOUTH, "m1", days=days, seed=3, utc=False),
            ]
        ),
        "machine_runs": _runs(NORTH, days=days),
        "machine_events": _events(NORTH),
    }
    for kind, frame in frames.items():
        _write(inbox, kind, "all.csv", frame)
    again = frames["electricity_15min"].iloc[:10].copy()  # the same readings, spelled anew
    again["ts"] = pd.to_datetime(again["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    _write(inbox, "electricity_15min", "again.csv", again)
    frames["electricity_15min"] = pd.concat([frames["electricity_15min"], again])
    return frames


def _local(ts: pd.Series) -> pd.Series:
    """Timestamps as the node reads them: naive local time in Shanghai."""
    offset = ts.str.contains(r"(?:Z|[+-]\d{2}:\d{2})$")
    aware = pd.to_datetime(ts.where(offset), format="ISO8601", utc=True)
    local = aware.dt.tz_convert(SHANGHAI).dt.tz_localize(None)
    return local.where(offset, pd.to_datetime(ts.where(~offset), format="ISO8601"))


def _expected_kwh(electricity: pd.DataFrame, firm: str) -> pd.Series:
    mine = electricity[electricity["firm_id"] == firm].assign(at=lambda f: _local(f["ts"]))
    once = mine.drop_duplicates(subset=["meter_id", "at"])
    return once.groupby(once["at"].dt.floor("15min"))["kwh"].sum()


def _expected_running(runs: pd.DataFrame, slots: pd.Index) -> pd.Series:
    """Each slot [s, s + 15 min) in which some run was on, from the runs one by one."""
    on: set[pd.Timestamp] = set()
    for start, end in zip(_local(runs["run_start"]), _local(runs["run_end"]), strict=True):
        on |= set(pd.date_range(start.floor("15min"), end, freq="15min", inclusive="left"))
    return pd.Series([slot in on for slot in slots], index=slots)


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("small-node")
    frames = _small_inbox(root / "inbox")
    _ingest(root / "inbox", root / "node")
    return root / "node", frames


# --- readings -----------------------------------------------------------------------------


def test_readings_are_the_per_slot_sums_over_the_firms_meters(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    # Arrange
    node, frames = small_node
    expected = _expected_kwh(frames["electricity_15min"], NORTH)

    # Act
    readings = readings_from_node(node, firm=NORTH)

    # Assert
    assert [r.at for r in readings] == list(expected.index.to_pydatetime())
    np.testing.assert_allclose([r.kwh for r in readings], expected.to_numpy(), rtol=1e-12)
    assert all(type(r.at) is datetime and r.at.tzinfo is None for r in readings)
    assert len(readings) == 3 * 96  # the UTC meter's readings land in the same slots


def test_running_follows_the_machine_runs_and_is_unknown_without_them(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, frames = small_node

    north = readings_from_node(node, firm=NORTH)
    south = readings_from_node(node, firm=SOUTH)

    slots = pd.Index([r.at for r in north])
    expected = _expected_running(frames["machine_runs"], slots)
    assert [r.running for r in north] == expected.tolist()
    assert 0 < sum(expected) < len(expected)
    at = {r.at: r.running for r in north}
    assert at[datetime(2025, 1, 6, 7, 0)] is True  # a run from 07:05 is on in the 07:00 slot
    assert at[datetime(2025, 1, 6, 12, 0)] is False  # one that ended at 12:00 is not
    assert at[datetime(2025, 1, 6, 18, 45)] is True
    assert {r.running for r in south} == {None}


def test_failures_are_the_failure_events_of_each_slot(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, _ = small_node

    north = {r.at: r.failures for r in readings_from_node(node, firm=NORTH)}
    south = readings_from_node(node, firm=SOUTH)

    assert {at: n for at, n in north.items() if n} == {
        datetime(2025, 1, 6, 9, 0): 2,
        datetime(2025, 1, 7, 15, 30): 1,
    }
    assert sum(r.failures for r in south) == 0


def test_after_gives_only_the_later_slots(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, _ = small_node
    everything = readings_from_node(node, firm=NORTH)
    cut = everything[150].at

    later = readings_from_node(node, firm=NORTH, after=cut)
    aware = readings_from_node(
        node, firm=NORTH, after=pd.Timestamp(cut, tz=SHANGHAI).tz_convert(UTC).to_pydatetime()
    )
    none = readings_from_node(node, firm=NORTH, after=everything[-1].at)

    assert later == everything[151:]
    assert aware == later
    assert none == []


# --- errors -------------------------------------------------------------------------------


def test_a_node_without_a_raw_store_says_to_ingest_first(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"raw\.db: no raw store: run `fedrisk node ingest"):
        readings_from_node(tmp_path / "node", firm=NORTH)


def test_an_unknown_firm_is_named_with_the_closest_one(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, _ = small_node

    with pytest.raises(DataError, match=r"raw\.db.*'firm_id'") as close:
        readings_from_node(node, firm="plant-nroth")
    with pytest.raises(DataError) as far:
        readings_from_node(node, firm="XYZ")

    assert "no electricity_15min readings of firm 'plant-nroth'" in str(close.value)
    assert "did you mean 'plant-north'?" in str(close.value)
    assert "firms with readings: plant-north, plant-south" in str(far.value)


def test_a_bad_time_zone_is_refused_before_reading(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, _ = small_node
    with pytest.raises(EdgeError, match=r"IANA zone.*'Mars/Olympus'"):
        readings_from_node(node, firm=NORTH, tz="Mars/Olympus")


def test_the_store_is_read_only_to_the_monitor(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    node, _ = small_node
    before = sorted(p.name for p in node.iterdir())
    database = (node / "raw.db").read_bytes()

    readings_from_node(node, firm=NORTH)

    assert sorted(p.name for p in node.iterdir()) == before
    assert (node / "raw.db").read_bytes() == database


# --- the command --------------------------------------------------------------------------

DAYS = 140
DROP_DAY = 84


def _app() -> typer.Typer:
    from fedrisk import app  # slow to import: only the command tests pay for it

    return app


def _monitor(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["node", "monitor", *map(str, args)])
    return result.exit_code, result.output


def _plant_inbox(inbox: Path) -> dict[str, pd.DataFrame]:
    """Twenty weeks of a plant whose energy halves from day 84; runs of its machines."""
    m1 = _electricity(NORTH, "m1", days=DAYS, seed=4, utc=False)
    m2 = _electricity(NORTH, "m2", days=DAYS, seed=5, utc=True)
    for meter in (m1, m2):
        meter.loc[meter.index >= DROP_DAY * 96, "kwh"] *= 0.5
    frames = {"electricity_15min": pd.concat([m1, m2]), "machine_runs": _runs(NORTH, days=DAYS)}
    for kind, frame in frames.items():
        _write(inbox, kind, "all.csv", frame)
    return frames


def _readings_csv(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """The same readings as a CSV, computed with pandas from the inbox's files."""
    kwh = _expected_kwh(frames["electricity_15min"], NORTH)
    running = _expected_running(frames["machine_runs"], kwh.index)
    pd.DataFrame(
        {"timestamp": kwh.index, "kwh": kwh.to_numpy(), "running": running.astype(int)}
    ).to_csv(path, index=False)


def test_the_command_with_node_raises_what_the_equivalent_csv_raises(tmp_path: Path) -> None:
    # Arrange
    frames = _plant_inbox(tmp_path / "inbox")
    _ingest(tmp_path / "inbox", tmp_path / "node")
    _readings_csv(tmp_path / "readings.csv", frames)
    common = ("--factory", "F1", "--subject", NORTH)

    # Act
    from_csv = _monitor(
        *common, "--readings", tmp_path / "readings.csv", "--state", tmp_path / "csv.sqlite",
        "--output", tmp_path / "csv.json",
    )  # fmt: skip
    node_args = (
        *common, "--node", tmp_path / "node", "--state", tmp_path / "node.sqlite",
        "--output", tmp_path / "node.json",
    )  # fmt: skip
    from_node = _monitor(*node_args)
    again = _monitor(*node_args)

    # Assert
    assert from_csv[0] == 0, from_csv[1]
    assert from_node[0] == 0, from_node[1]
    events = json.loads((tmp_path / "node.json").read_text())
    assert events and events == json.loads((tmp_path / "csv.json").read_text())
    assert "energy" in {e["indicator"] for e in events}
    assert f"{DAYS * 96:,} new slot(s) of {NORTH}" in from_node[1]
    assert f"{DAYS * 96:,} readings (0 already seen)" in from_node[1]
    assert again[0] == 0, again[1]
    assert "0 new slot(s) of plant-north after 2025-05-25 23:45" in again[1]
    assert "0 readings (0 already seen)" in again[1] and "0 new change(s)" in again[1]


def test_a_second_run_reads_only_the_newly_ingested_slots(tmp_path: Path) -> None:
    inbox, node = tmp_path / "inbox", tmp_path / "node"
    _small_inbox(inbox, days=2)
    _ingest(inbox, node)
    args = ("--factory", "F1", "--subject", SOUTH, "--node", node, "--state", tmp_path / "m.db")
    first = _monitor(*args)
    later = _electricity(SOUTH, "m1", days=3, seed=3, utc=False).iloc[2 * 96 :]
    _write(inbox, "electricity_15min", "day3.csv", later)
    _ingest(inbox, node)

    second = _monitor(*args)

    assert first[0] == 0 and "192 new slot(s)" in first[1], first[1]
    assert second[0] == 0, second[1]
    assert "96 new slot(s) of plant-south after 2025-01-07 23:45" in second[1]
    assert "96 readings (0 already seen)" in second[1]


@pytest.mark.parametrize(
    ("sources", "given"),
    [(("--readings", "r.csv", "--node", "node"), "both"), ((), "neither")],
)
def test_the_command_needs_exactly_one_source(
    tmp_path: Path, sources: tuple[str, ...], given: str
) -> None:
    code, output = _monitor(
        "--factory", "F1", "--subject", NORTH, "--state", tmp_path / "m.db", *sources
    )

    assert code == 1
    assert f"error: give exactly one of --readings CSV or --node DIR ({given} given)" in output
    assert not (tmp_path / "m.db").exists()


def test_the_command_says_to_ingest_first_and_keeps_no_state(tmp_path: Path) -> None:
    code, output = _monitor(
        "--factory", "F1", "--subject", NORTH, "--node", tmp_path / "node",
        "--state", tmp_path / "m.db",
    )  # fmt: skip

    assert code == 1
    assert "raw.db: no raw store: run `fedrisk node ingest --inbox DIR --node NODE` first" in output
    assert "Traceback" not in output
    assert not (tmp_path / "m.db").exists()


def test_the_command_names_an_unknown_firm(
    small_node: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    node, _ = small_node

    code, output = _monitor(
        "--factory", "F1", "--subject", "plant-sout", "--node", node, "--state", tmp_path / "m.db"
    )

    assert code == 1
    assert "no electricity_15min readings of firm 'plant-sout'" in output
    assert "did you mean 'plant-south'?" in output


# --- the command's scores -----------------------------------------------------------------


def _register_iot(root: Path) -> Path:
    """A logistic model over the node's monthly indicators: risk falls as energy rises."""
    import torch

    from models.nets import build_network
    from models.registry import ModelRegistry
    from models.schema import FeatureSpec, TabularSchema
    from participants.demo import INDICATOR_COLUMNS

    schema = TabularSchema(
        id="row_id",
        label="label",
        features=tuple(FeatureSpec(name=c, type="float") for c in INDICATOR_COLUMNS),
    )
    net = build_network("logistic", n_features=len(INDICATOR_COLUMNS), seed=0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(0.1)
    ModelRegistry(root).register(
        model=net, name="demo-iot", spec_name="iot_risk", schema=schema,
        n_features=len(INDICATOR_COLUMNS), mode="horizontal", participants={"F1": 1},
        rounds=1, strategy="FedAvg", privacy_mode="none",
    )  # fmt: skip
    return root


def _torch_probability(registry: Path, monthly: pd.DataFrame, month: str) -> float:
    import torch

    from models.registry import ModelRegistry
    from participants.demo import INDICATOR_COLUMNS

    net = ModelRegistry(registry).latest("demo-iot").load_network()
    row = monthly[(monthly["firm_id"] == NORTH) & (monthly["month"] == month)]
    x = torch.tensor(row[list(INDICATOR_COLUMNS)].to_numpy(dtype=np.float32))
    with torch.no_grad():
        return float(torch.sigmoid(net(x)).reshape(-1)[0])


def test_the_command_scores_each_change_over_the_nodes_monthly_indicators(
    tmp_path: Path,
) -> None:
    # Arrange
    _plant_inbox(tmp_path / "inbox")
    machines = pd.DataFrame(
        {"firm_id": NORTH, "machine_id": ["press-1", "press-2"], "line_id": "L1", "rated_kw": 40}
    )
    _write(tmp_path / "inbox", "machines", "all.csv", machines)
    _ingest(tmp_path / "inbox", tmp_path / "node")
    registry = _register_iot(tmp_path / "registry")
    monthly = pd.read_csv(tmp_path / "node" / "indicators_monthly.csv", dtype={"month": str})

    # Act
    code, output = _monitor(
        "--factory", "F1", "--subject", NORTH, "--node", tmp_path / "node",
        "--state", tmp_path / "m.db", "--registry", registry, "--model", "demo-iot",
        "--output", tmp_path / "events.json",
    )  # fmt: skip

    # Assert
    assert code == 0, output
    energy = next(e for e in json.loads((tmp_path / "events.json").read_text())
                  if e["indicator"] == "energy")  # fmt: skip
    months = sorted(monthly.loc[monthly["firm_id"] == NORTH, "month"])
    before = max(m for m in months if m < energy["since"][:7])
    after = max(m for m in months if m <= energy["detected_at"][:7])
    assert energy["score_before"] == pytest.approx(
        _torch_probability(registry, monthly, before), abs=1e-4
    )
    assert energy["score_after"] == pytest.approx(
        _torch_probability(registry, monthly, after), abs=1e-4
    )
    from models.registry import ModelRegistry

    assert energy["model_version"] == ModelRegistry(registry).latest("demo-iot").version
    assert f"before {energy['score_before']:.1%}" in output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--model", "demo-iot"), "--model, --version and --features need --registry"),
        (("--registry", "REG"), "--registry needs --model"),
        (("--registry", "REG", "--model", "demo-iot", "--features", "none.csv"),
         "none.csv: no monthly indicators"),
        (("--registry", "REG", "--model", "demo-sme"), "demo-sme"),
    ],
)  # fmt: skip
def test_the_commands_score_options_are_checked_before_any_state(
    small_node: tuple[Path, dict[str, pd.DataFrame]],
    tmp_path: Path,
    options: tuple[str, ...],
    message: str,
) -> None:
    node, _ = small_node
    registry = _register_iot(tmp_path / "registry")
    given = [str(registry) if o == "REG" else str(tmp_path / o) if o.endswith(".csv") else o
             for o in options]  # fmt: skip

    code, output = _monitor(
        "--factory", "F1", "--subject", NORTH, "--node", node, "--state", tmp_path / "m.db",
        *given,
    )  # fmt: skip

    assert code == 1, output
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "m.db").exists()


def test_readings_from_a_csv_need_the_indicators_named(tmp_path: Path) -> None:
    registry = _register_iot(tmp_path / "registry")
    (tmp_path / "r.csv").write_text("timestamp,kwh\n2025-01-06 00:00:00,1.0\n")

    code, output = _monitor(
        "--factory", "F1", "--subject", NORTH, "--readings", tmp_path / "r.csv",
        "--state", tmp_path / "m.db", "--registry", registry, "--model", "demo-iot",
    )  # fmt: skip

    assert code == 1
    assert "--registry with --readings needs --features" in output
    assert not (tmp_path / "m.db").exists()
