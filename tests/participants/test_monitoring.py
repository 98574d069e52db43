"""Post-loan monitoring at the factory node (participants/monitoring): changes detected
in a plant's readings, located and sized, raised once, surviving a restart; nothing but
aggregates in what leaves the node."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import ConfigFileError, DataError
from participants.monitoring import ChangeEvent, FactoryMonitor, Reading, load_watches
from participants.monitoring.readings import read_readings

DAYS = 140
START = pd.Timestamp("2025-01-06")  # a Monday
EVENT_DAY = 84
IDLE_KWH = 5.0


def _plant(
    seed: int = 0, *, failure_p: float = 0.01
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Weekday day shifts on the meter (noisy), a light Saturday, failures at random."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(START, periods=DAYS * 96, freq="15min")
    weekday = np.asarray(stamps.dayofweek)
    hour = np.asarray(stamps.hour)
    shift = (hour >= 7) & (hour < 19)
    working = shift & ((weekday < 5) | ((weekday == 5) & (hour < 12)))
    kwh = 3.0 + working * rng.uniform(30.0, 50.0, len(stamps))
    failures = (working & (rng.random(len(stamps)) < failure_p)).astype(int)
    return stamps, kwh, failures


def _readings(stamps: pd.DatetimeIndex, kwh: np.ndarray, failures: np.ndarray) -> list[Reading]:
    at = stamps.to_pydatetime()
    return [Reading(at[i], float(kwh[i]), None, int(failures[i])) for i in range(len(at))]


def _monitor(**kwargs: object) -> FactoryMonitor:
    return FactoryMonitor(factory="F1", subject_id="S1", idle_kwh=IDLE_KWH, **kwargs)  # type: ignore[arg-type]


def _by_indicator(events: list[ChangeEvent]) -> dict[str, list[ChangeEvent]]:
    found: dict[str, list[ChangeEvent]] = {}
    for event in events:
        found.setdefault(event.indicator, []).append(event)
    return found


def _day(index: int) -> date:
    return (START + pd.Timedelta(days=index)).date()


def test_a_clean_plant_raises_nothing() -> None:
    stamps, kwh, failures = _plant()
    monitor = _monitor()
    assert monitor.add(_readings(stamps, kwh, failures)) == []
    assert len(monitor.days()) == DAYS - 1  # the last day is still open


def test_an_energy_drop_is_detected_located_and_sized() -> None:
    stamps, kwh, failures = _plant()
    kwh[EVENT_DAY * 96 :] *= 0.6
    events = _by_indicator(_monitor().add(_readings(stamps, kwh, failures)))
    (energy,) = events["energy"]
    assert abs((energy.since - _day(EVENT_DAY)).days) <= 1
    assert energy.detected_at.date() - _day(EVENT_DAY) <= timedelta(days=10)
    assert energy.change == pytest.approx(-0.4, abs=0.08)
    assert energy.after < energy.before
    assert "fell" in energy.text and str(energy.since) in energy.text


def test_a_week_of_downtime_shows_in_running_hours() -> None:
    stamps, kwh, failures = _plant()
    kwh[EVENT_DAY * 96 : (EVENT_DAY + 7) * 96] = 2.0
    events = _by_indicator(_monitor().add(_readings(stamps, kwh, failures)))
    (run_hours,) = events["run_hours"]
    assert abs((run_hours.since - _day(EVENT_DAY)).days) <= 1
    assert run_hours.change < -0.8


def test_rising_failures_are_detected() -> None:
    stamps, kwh, failures = _plant(failure_p=0.01)
    rng = np.random.default_rng(7)
    later = np.arange(len(stamps)) >= EVENT_DAY * 96
    failures = np.where(later & (kwh > IDLE_KWH), rng.random(len(stamps)) < 0.05, failures)
    events = _by_indicator(_monitor().add(_readings(stamps, kwh, failures.astype(int))))
    (rising,) = events["failure_rate"]
    assert rising.after > 2 * rising.before
    assert rising.since >= _day(EVENT_DAY - 7)


def test_events_do_not_depend_on_how_readings_are_batched() -> None:
    stamps, kwh, failures = _plant()
    kwh[EVENT_DAY * 96 :] *= 0.5
    readings = _readings(stamps, kwh, failures)
    whole = _monitor().add(readings)
    one_by_one = _monitor()
    pieces = [e for r in readings for e in one_by_one.add([r])]
    assert whole and pieces == whole


def test_a_restart_resumes_without_losing_or_repeating(tmp_path: Path) -> None:
    stamps, kwh, failures = _plant()
    kwh[EVENT_DAY * 96 :] *= 0.5
    readings = _readings(stamps, kwh, failures)
    expected = _monitor().add(readings)
    state = tmp_path / "monitor.sqlite"
    first = _monitor(state=state)
    seen = first.add(readings[: 90 * 96 + 17])  # a crash mid-day, after the detection
    first.close()  # nothing after the last closed day was saved
    second = _monitor(state=state)
    later = second.add(readings[80 * 96 :])  # the inbox delivers from an earlier point
    assert second.skipped > 0
    assert {e.event_id for e in seen} | {e.event_id for e in later} == {
        e.event_id for e in expected
    }
    assert [p["event_id"] for p in second.pending()] == [e.event_id for e in expected]
    second.acknowledge(expected[0].event_id)
    assert second.pending() == [e.to_message() for e in expected[1:]]


def test_what_leaves_the_node_is_aggregates_only() -> None:
    stamps, kwh, failures = _plant()
    kwh[EVENT_DAY * 96 :] *= 0.6
    (event, *_) = _monitor().add(_readings(stamps, kwh, failures))
    message = event.to_message()
    assert set(message) == {
        "event_id", "factory", "subject_id", "indicator", "detector", "detected_at", "since",
        "before", "after", "change", "unit", "text", "score_before", "score_after",
        "model_version",
    }  # fmt: skip
    numbers = [v for v in message.values() if isinstance(v, float)]
    readings = set(np.round(kwh, 4))
    assert not any(v in readings for v in numbers)


def test_watches_are_configurable_and_bad_ones_named(tmp_path: Path) -> None:
    good = tmp_path / "watches.toml"
    good.write_text('[energy]\ndetector = "ADWIN"\nparams = { delta = 0.01 }\nmin_change = 0.3\n')
    watches = load_watches(good)
    assert watches["energy"].detector == "ADWIN" and watches["energy"].min_change == 0.3
    assert watches["run_hours"].detector == "PageHinkley"  # defaults kept
    cases = {
        "[energi]\n": "energi' (did you mean 'energy'?)",
        '[energy]\ndetector = "PageHinkly"\n': "did you mean 'PageHinkley'?",
        "[energy]\nparams = { treshold = 3 }\n": "did you mean 'threshold'?",
        "[energy]\nmin_change = -1\n": "must be a number >= 0",
        "[energy]\nwindow = 3\n": "unknown key 'window'",
        "[energy\n": "not valid TOML",
    }
    for text, words in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigFileError, match=r"bad\.toml") as caught:
            load_watches(bad)
        assert words in str(caught.value)


def test_a_bad_readings_file_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_text("timestamp,kwh\n2025-01-01 00:00,3.1\n2025-01-01 00:15,lots\n")
    with pytest.raises(DataError, match=r"readings.csv.*row 3.*kwh"):
        read_readings(path)
    path.write_text("timestamp,kwh\n2025-01-01 00:00,3.1\n2025-01-01 00:00,3.2\n")
    with pytest.raises(DataError, match=r"row 3.*timestamp.*twice"):
        read_readings(path)
    path.write_text("timestamp,kwh,running\n2025-01-01 00:00,3.1,2\n")
    with pytest.raises(DataError, match=r"row 2.*running"):
        read_readings(path)


def test_the_node_command_reports_changes_and_writes_them(tmp_path: Path) -> None:
    stamps, kwh, _ = _plant()
    kwh[EVENT_DAY * 96 :] *= 0.5
    readings = tmp_path / "readings.csv"
    pd.DataFrame({"timestamp": stamps, "kwh": kwh}).to_csv(readings, index=False)
    command = [
        sys.executable, "-m", "fedrisk", "node", "monitor", "--readings", str(readings),
        "--factory", "F1", "--subject", "S1", "--idle-kwh", str(IDLE_KWH),
        "--state", str(tmp_path / "m.sqlite"), "--output", str(tmp_path / "events.json"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "energy" in done.stderr and "fell" in done.stderr
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "0 new change(s)" in again.stderr and "already seen" in again.stderr
    events = pd.read_json(tmp_path / "events.json")
    assert set(events["indicator"]) >= {"energy"}
