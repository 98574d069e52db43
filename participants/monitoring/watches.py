"""What the node watches: per indicator, a streaming change detector from ``river`` and
the smallest change worth an alert, with defaults and a TOML file to override them.

```toml
[energy]                      # one table per indicator
detector = "PageHinkley"      # any of DETECTORS
params = { threshold = 2.0, delta = 0.1, min_instances = 14, mode = "down" }
min_change = 0.2              # relative change below which no alert is raised
```
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from river import drift
from river.drift import binary

from models.errors import ConfigFileError, did_you_mean

__all__ = ["BINARY", "DEFAULT_WATCHES", "DETECTORS", "INDICATORS", "Watch", "load_watches"]

#: The streaming detectors a watch may use (river's drift detectors). The binary ones
#: (:data:`BINARY`) watch a 0/1 stream, one trial per running interval (a failure or not);
#: the others watch the indicator's weekly signal, once a day.
DETECTORS: Final[Mapping[str, type]] = {
    "ADWIN": drift.ADWIN,
    "DDM": binary.DDM,
    "EDDM": binary.EDDM,
    "FHDDM": binary.FHDDM,
    "HDDMA": binary.HDDMA,
    "HDDMW": binary.HDDMW,
    "KSWIN": drift.KSWIN,
    "PageHinkley": drift.PageHinkley,
}

BINARY: Final = frozenset({"DDM", "EDDM", "FHDDM", "HDDMA", "HDDMW"})

#: Indicator -> (unit of its daily value, words for a credit officer).
INDICATORS: Final[Mapping[str, tuple[str, str]]] = {
    "energy": ("kWh a day", "energy use"),
    "failure_rate": ("failures per 100 running hours", "machine failures"),
    "run_hours": ("running hours a day", "machine running hours"),
}


@dataclass(frozen=True)
class Watch:
    """One indicator's detector and alert threshold."""

    indicator: str
    detector: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Relative change (after / before - 1) below which a detection raises no alert.
    min_change: float = 0.2

    def make_detector(self) -> Any:
        return DETECTORS[self.detector](**self.params)


#: Measured on the steel plant's year (BENCHMARKS.md, monitoring).
DEFAULT_WATCHES: Final[Mapping[str, Watch]] = {
    "energy": Watch(
        "energy",
        "PageHinkley",
        {"min_instances": 14, "delta": 0.1, "threshold": 2.0, "mode": "down"},
    ),
    "run_hours": Watch(
        "run_hours",
        "PageHinkley",
        {"min_instances": 14, "delta": 0.1, "threshold": 2.0, "mode": "down"},
    ),
    "failure_rate": Watch(
        "failure_rate",
        "PageHinkley",
        {"min_instances": 14, "delta": 0.3, "threshold": 5.0, "mode": "up"},
        min_change=0.5,
    ),
}


def load_watches(path: Path | None) -> dict[str, Watch]:
    """The default watches, overridden by ``path``'s tables (see the module docstring)."""
    watches = dict(DEFAULT_WATCHES)
    if path is None:
        return watches
    name = str(path)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigFileError(file=name, key=None, reason=exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(file=name, key=None, reason=f"not valid TOML: {exc}") from None
    for indicator, table in document.items():
        if indicator not in INDICATORS:
            raise ConfigFileError(
                file=name, key=indicator, reason=_unknown("indicator", indicator, INDICATORS)
            )
        if not isinstance(table, dict):
            raise ConfigFileError(file=name, key=indicator, reason="must be a table")
        watches[indicator] = _watch(name, indicator, table, watches[indicator])
    return watches


def _watch(file: str, indicator: str, table: dict[str, Any], default: Watch) -> Watch:
    extra = set(table) - {"detector", "params", "min_change"}
    if extra:
        key = sorted(extra)[0]
        reason = _unknown("key", key, ("detector", "params", "min_change"))
        raise ConfigFileError(file=file, key=f"{indicator}.{key}", reason=reason)
    detector = table.get("detector", default.detector)
    if detector not in DETECTORS:
        raise ConfigFileError(
            file=file,
            key=f"{indicator}.detector",
            reason=_unknown("detector", str(detector), DETECTORS),
        )
    same = detector == default.detector
    params = table.get("params", default.params if same else {})
    if not isinstance(params, dict):
        raise ConfigFileError(file=file, key=f"{indicator}.params", reason="must be a table")
    accepted = set(inspect.signature(DETECTORS[detector]).parameters)
    for key in params:
        if key not in accepted:
            raise ConfigFileError(
                file=file,
                key=f"{indicator}.params.{key}",
                reason=_unknown(f"parameter of {detector}", key, sorted(accepted)),
            )
    min_change = table.get("min_change", default.min_change)
    if not isinstance(min_change, int | float) or isinstance(min_change, bool) or min_change < 0:
        raise ConfigFileError(
            file=file, key=f"{indicator}.min_change", reason="must be a number >= 0"
        )
    watch = replace(default, detector=detector, params=dict(params), min_change=float(min_change))
    try:
        watch.make_detector()
    except (TypeError, ValueError) as exc:
        raise ConfigFileError(file=file, key=f"{indicator}.params", reason=str(exc)) from None
    return watch


def _unknown(what: str, value: str, known: Any) -> str:
    hint = did_you_mean(value, known)
    return f"unknown {what} {value!r}{hint}; known: {', '.join(sorted(known))}"
