"""One factory's post-loan monitor: readings in, daily indicators, change events out.

Readings (15-minute meter readings, with the machines' running state and failure counts
where the node has them) arrive in time order. A reading of a later day closes the open
day: its energy, running hours and failures become a day record, and each watch's signal
goes to its detector:

- ``energy`` and ``run_hours``: the log ratio of the last seven days' total to the median
  of the four seven-day totals before them (a weekly profile compared with the plant's
  own last month, so weekends and the plant's seasons are not changes);
- ``failure_rate``: the day's failures against the count the plant's rate over the four
  weeks before last week gives for the day's running hours, in Poisson standard
  deviations; or, with a binary detector (DDM and kin), every running interval as a 0/1
  trial.

A detection becomes a :class:`ChangeEvent` if the change, located by ``ruptures`` in the
last eight weeks of daily values, is at least the watch's ``min_change``; an indicator
raises at most one event per fortnight. Days of a planned closure (:mod:`.closures`) are
left out: they become no day record and reach no detector, so the weeks compared are
working weeks. With ``state`` the monitor keeps its whole state in one SQLite file, saved
in one transaction whenever a day closes or an event is raised, with the events not yet
acknowledged by the coordinator: after a crash it resumes from the last save, and readings
at or before the last one it saw are skipped (counted).
"""

from __future__ import annotations

import math
import pickle
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from .closures import Closure, closed_days
from .events import ChangeEvent, locate_change
from .watches import BINARY, DEFAULT_WATCHES, Watch

__all__ = ["FactoryMonitor", "Reading"]

_WEEK: Final = 7
_REFERENCE_WEEKS: Final = 4
#: Days of history before any detector sees a signal (five weeks).
_WARM_UP: Final = _WEEK * (1 + _REFERENCE_WEEKS)
_LOCATE_DAYS: Final = 56
_BEFORE_DAYS: Final = 28
_COOLDOWN: Final = timedelta(days=14)
_SLOT_HOURS: Final = 0.25


@dataclass(frozen=True)
class Reading:
    """One interval's reading: its start (local time), energy and, if known, the machines'
    state and the failures in it."""

    at: datetime
    kwh: float
    running: bool | None = None
    failures: int = 0


@dataclass
class _Day:
    day: date
    energy: float = 0.0
    run_hours: float = 0.0
    failures: int = 0
    readings: int = 0

    def value(self, indicator: str) -> float:
        if indicator == "failure_rate":
            return 100.0 * self.failures / self.run_hours if self.run_hours else 0.0
        return float(getattr(self, indicator))


@dataclass
class _State:
    open_day: _Day | None = None
    days: list[_Day] = field(default_factory=list)
    detectors: dict[str, Any] = field(default_factory=dict)
    last_event: dict[str, date] = field(default_factory=dict)
    last_at: datetime | None = None
    skipped: int = 0
    suppressed: int = 0


class FactoryMonitor:
    """The monitor of ``factory`` (whose firm is ``subject_id``); see the module docstring.

    ``idle_kwh``: a reading without a running state counts as running above this energy;
    without it (and without states) running hours and failure rates are not watched.
    ``score``: adds the firm's score before and after to each event (:mod:`.scoring`).
    ``closures``: the plant's planned closures, whose days are left out.
    """

    def __init__(
        self,
        *,
        factory: str,
        subject_id: str,
        watches: Mapping[str, Watch] = DEFAULT_WATCHES,
        idle_kwh: float | None = None,
        state: Path | None = None,
        score: Callable[[ChangeEvent], ChangeEvent] | None = None,
        closures: Iterable[Closure] = (),
    ) -> None:
        self.factory = factory
        self._closed = closed_days(closures)
        self._score = score
        self.subject_id = subject_id
        self.watches = dict(watches)
        self.idle_kwh = idle_kwh
        self._db = _open(state) if state is not None else None
        self._state = self._load() or _State(
            detectors={name: w.make_detector() for name, w in self.watches.items()}
        )

    # --- reading -------------------------------------------------------------------------

    @property
    def last_reading_at(self) -> datetime | None:
        """When the last reading taken began (``None`` before the first): a source need
        only deliver readings after it."""
        return self._state.last_at

    @property
    def skipped(self) -> int:
        """Readings at or before the last one seen (duplicates, late arrivals)."""
        return self._state.skipped

    @property
    def suppressed(self) -> int:
        """Detections whose located change was below the watch's ``min_change``."""
        return self._state.suppressed

    def days(self) -> list[tuple[date, float, float, int]]:
        """The closed days: (day, energy kWh, running hours, failures)."""
        return [(d.day, d.energy, d.run_hours, d.failures) for d in self._state.days]

    def add(self, readings: Iterable[Reading]) -> list[ChangeEvent]:
        """Take readings in time order; the change events they raised (also kept, with
        ``state``, until :meth:`acknowledge`)."""
        state = self._state
        events: list[ChangeEvent] = []
        changed = False
        for reading in readings:
            if state.last_at is not None and reading.at <= state.last_at:
                state.skipped += 1
                continue
            state.last_at = reading.at
            day = reading.at.date()
            if state.open_day is None or state.open_day.day != day:
                if state.open_day is not None:
                    events.extend(self._close(state.open_day, reading.at))
                    changed = True
                state.open_day = _Day(day)
            events.extend(self._take(state.open_day, reading))
        if changed or events:
            self._save(events)
        return events

    def _take(self, day: _Day, reading: Reading) -> list[ChangeEvent]:
        if day.day in self._closed:
            return []
        day.readings += 1
        day.energy += reading.kwh
        running = reading.running
        if running is None and self.idle_kwh is not None:
            running = reading.kwh > self.idle_kwh
        if not running:
            return []
        day.run_hours += _SLOT_HOURS
        day.failures += reading.failures
        watch = self.watches.get("failure_rate")
        if watch is None or watch.detector not in BINARY or len(self._state.days) < _WARM_UP:
            return []
        detector = self._state.detectors["failure_rate"]
        detector.update(1 if reading.failures > 0 else 0)
        if not detector.drift_detected:
            return []
        return self._event(watch, reading.at, extra=day)

    def _close(self, day: _Day, at: datetime) -> list[ChangeEvent]:
        if day.day in self._closed:
            return []
        state = self._state
        state.days.append(day)
        events: list[ChangeEvent] = []
        for name, watch in self.watches.items():
            if watch.detector in BINARY or (name != "energy" and not self._knows_running()):
                continue
            signal = self._weekly_signal(name)
            if signal is None:
                continue
            detector = state.detectors[name]
            detector.update(signal)
            if detector.drift_detected:
                events.extend(self._event(watch, at))
        return events

    def _knows_running(self) -> bool:
        return self.idle_kwh is not None or any(d.run_hours for d in self._state.days[-_WEEK:])

    def _weekly_signal(self, indicator: str) -> float | None:
        days = self._state.days
        if len(days) < _WARM_UP:
            return None
        if indicator == "failure_rate":
            return self._failure_signal(days)
        values = np.array([d.value(indicator) for d in days[-_WARM_UP:]])
        weeks = values.reshape(1 + _REFERENCE_WEEKS, _WEEK).sum(axis=1)
        reference = float(np.median(weeks[:-1]))
        return math.log((weeks[-1] + 1.0) / (reference + 1.0))

    @staticmethod
    def _failure_signal(days: list[_Day]) -> float:
        """The day's failures against what the four weeks before last week's rate would
        give for its running hours, in Poisson standard deviations."""
        reference = days[-_WARM_UP:-_WEEK]
        hours = sum(d.run_hours for d in reference)
        rate = (sum(d.failures for d in reference) + 1.0) / (hours + 1.0)
        today = days[-1]
        expected = rate * today.run_hours
        return (today.failures - expected) / math.sqrt(expected + 1.0)

    # --- events --------------------------------------------------------------------------

    def _event(self, watch: Watch, at: datetime, *, extra: _Day | None = None) -> list[ChangeEvent]:
        state = self._state
        last = state.last_event.get(watch.indicator)
        if last is not None and at.date() - last < _COOLDOWN:
            return []
        days = state.days[-(_LOCATE_DAYS + _BEFORE_DAYS) :]
        if extra is not None:
            days = [*days, extra]
        values = np.array([d.value(watch.indicator) for d in days])
        profile = _weekday_profile(values, [d.day.weekday() for d in days])
        recent = (values / profile)[-_LOCATE_DAYS:]
        start = len(values) - len(recent) + locate_change(recent)
        before = values[max(0, start - _BEFORE_DAYS) : start]
        after = values[start:]
        if len(before) == 0 or len(after) == 0:
            return []
        mean_before, mean_after = float(before.mean()), float(after.mean())
        mode = watch.params.get("mode", "both")
        against = (mode == "up" and mean_after < mean_before) or (
            mode == "down" and mean_after > mean_before
        )
        if against or mean_before == 0 or abs(mean_after / mean_before - 1) < watch.min_change:
            state.suppressed += 1
            return []
        state.last_event[watch.indicator] = at.date()
        event = ChangeEvent.build(
            factory=self.factory,
            subject_id=self.subject_id,
            indicator=watch.indicator,
            detector=watch.detector,
            detected_at=at,
            since=days[start].day,
            before=mean_before,
            after=mean_after,
        )
        return [event if self._score is None else self._score(event)]

    # --- state ---------------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        """Events raised but not yet acknowledged by the coordinator (with ``state``)."""
        if self._db is None:
            return []
        rows = self._db.execute("SELECT body FROM events WHERE acknowledged = 0 ORDER BY rowid")
        return [pickle.loads(body).to_message() for (body,) in rows]

    def acknowledge(self, event_id: str) -> None:
        if self._db is not None:
            with self._db:
                self._db.execute("UPDATE events SET acknowledged = 1 WHERE id = ?", (event_id,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def _load(self) -> _State | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT snapshot FROM monitor WHERE factory = ?", (self.factory,)
        ).fetchone()
        if row is None:
            return None
        loaded = pickle.loads(row[0])
        assert isinstance(loaded, _State)
        return loaded

    def _save(self, events: list[ChangeEvent]) -> None:
        if self._db is None:
            return
        with self._db:
            self._db.execute(
                "INSERT INTO monitor (factory, snapshot) VALUES (?, ?) "
                "ON CONFLICT (factory) DO UPDATE SET snapshot = excluded.snapshot",
                (self.factory, pickle.dumps(self._state)),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO events (id, body, acknowledged) VALUES (?, ?, 0)",
                [(e.event_id, pickle.dumps(e)) for e in events],
            )


def _weekday_profile(values: np.ndarray, weekdays: list[int]) -> np.ndarray:
    """Each day's weekday median over ``values`` (so a change is located in the weekly
    pattern, not at the weekend next to it); at least a small positive floor."""
    days = np.asarray(weekdays)
    medians = {w: float(np.median(values[days == w])) for w in set(weekdays)}
    floor = max(1e-9, 0.01 * float(np.median(values)) if len(values) else 1e-9)
    return np.array([max(medians[w], floor) for w in weekdays])


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS monitor (factory TEXT PRIMARY KEY, snapshot BLOB)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, body BLOB, "
            "acknowledged INTEGER)"
        )
    return db
