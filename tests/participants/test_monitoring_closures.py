"""Planned closures (participants/monitoring/closures.py): the plant's Spring Festival is
not a change; the same shutdown outside the calendar is; bad calendar files are named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError
from participants.monitoring import FactoryMonitor, Reading
from participants.monitoring.closures import Closure, load_closures, write_closures

FESTIVAL = Closure(date(2025, 1, 22), date(2025, 2, 8), "Spring Festival")


def _readings(*, shutdown: tuple[str, str] | None) -> list[Reading]:
    """Weekday day shifts from November; idle (3 kWh a slot) during ``shutdown``."""
    stamps = pd.date_range("2024-11-04", "2025-03-31", freq="15min", inclusive="left")
    rng = np.random.default_rng(3)
    working = (stamps.dayofweek < 5) & (stamps.hour >= 7) & (stamps.hour < 19)
    kwh = 3.0 + np.asarray(working) * rng.uniform(30.0, 50.0, len(stamps))
    if shutdown is not None:
        closed = (stamps >= pd.Timestamp(shutdown[0])) & (stamps < pd.Timestamp(shutdown[1]))
        kwh[closed] = 3.0
    return [Reading(t, float(k)) for t, k in zip(stamps.to_pydatetime(), kwh, strict=True)]


def _events(readings: list[Reading], closures: tuple[Closure, ...]) -> list[str]:
    monitor = FactoryMonitor(factory="F1", subject_id="S1", idle_kwh=5.0, closures=closures)
    return [f"{e.indicator} since {e.since}" for e in monitor.add(readings)]


def test_a_planned_closure_raises_nothing_and_the_same_shutdown_unplanned_does() -> None:
    readings = _readings(shutdown=("2025-01-22", "2025-02-09"))

    planned = _events(readings, (FESTIVAL,))
    unplanned = _events(readings, ())

    assert planned == []
    assert any(e.startswith("energy since 2025-01-2") for e in unplanned), unplanned


def test_a_shutdown_outside_the_closures_is_still_a_change() -> None:
    readings = _readings(shutdown=("2025-03-03", "2025-03-17"))

    events = _events(readings, (FESTIVAL,))

    assert any(e.startswith("energy since 2025-03-0") for e in events), events


def test_the_closures_file_round_trips(tmp_path: Path) -> None:
    closures = (FESTIVAL, Closure(date(2025, 10, 1), date(2025, 10, 8)))

    loaded = load_closures(write_closures(tmp_path / "closures.csv", closures))

    assert loaded == closures
    assert len(loaded[0].days()) == 18


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("first,last\n2025-01-22,2025-02-08\n2025-10-01,Oct 8\n",
         r"closures.csv.*row 3.*last.*'Oct 8' is not a date"),
        ("first,last\n2025-02-08,2025-01-22\n", r"row 2.*last.*ends before it begins"),
        ("start,end\n2025-01-22,2025-02-08\n", r"missing columns \['first', 'last'\]"),
    ],
)  # fmt: skip
def test_a_bad_closures_file_is_named(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "closures.csv").write_text(text)

    with pytest.raises(DataError, match=match):
        load_closures(tmp_path / "closures.csv")


def test_a_closure_cannot_end_before_it_begins() -> None:
    with pytest.raises(ValueError, match="ends 2025-01-01 before it begins 2025-01-02"):
        Closure(date(2025, 1, 2), date(2025, 1, 1))


def test_the_command_leaves_the_closures_out(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrisk import app

    readings = _readings(shutdown=("2025-01-22", "2025-02-09"))
    pd.DataFrame({"timestamp": [r.at for r in readings], "kwh": [r.kwh for r in readings]}).to_csv(
        tmp_path / "readings.csv", index=False
    )
    write_closures(tmp_path / "closures.csv", (FESTIVAL,))
    (tmp_path / "bad.csv").write_text("first,last\nsoon,2025-02-08\n")

    def run(state: str, *extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [
            "node", "monitor", "--factory", "F1", "--subject", "S1", "--idle-kwh", "5",
            "--readings", str(tmp_path / "readings.csv"), "--state", str(tmp_path / state),
            *extra,
        ])  # fmt: skip
        return result.exit_code, result.output

    planned = run("a.db", "--closures", str(tmp_path / "closures.csv"))
    unplanned = run("b.db")
    bad = run("c.db", "--closures", str(tmp_path / "bad.csv"))

    assert planned[0] == 0 and "0 new change(s)" in planned[1], planned[1]
    assert unplanned[0] == 0 and "0 new change(s)" not in unplanned[1], unplanned[1]
    assert bad[0] == 1 and "bad.csv" in bad[1] and "'soon' is not a date" in bad[1]
    assert not (tmp_path / "c.db").exists()
