"""Composition of DP events into (ε, δ): one accountant interface over Opacus's accountants.

Two accountants are offered, both composing Poisson-subsampled Gaussian steps:

* ``"rdp"`` — Rényi DP (Mironov 2017, "Rényi Differential Privacy"; subsampled Gaussian
  bound of Mironov, Talwar & Zhang 2019), converted to (ε, δ) with the conversion of
  Balle et al. 2020 as implemented by Opacus's ``RDPAccountant``.
* ``"prv"`` — numerical composition of privacy loss random variables (Gopi, Lee & Wutschitz
  2021, "Numerical Composition of Differential Privacy"), Opacus's ``PRVAccountant``; it
  returns the upper end of its ε error interval, so it is a guarantee, and is usually
  tighter than RDP.

Composition is commutative, so events with the same noise and sample rate are merged by
adding their steps before Opacus sees them (exact for both accountants, and faster).
Values agree with Opacus 1.6's own test constants (see ``../shared/REFERENCE.md``).
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidParametersError, PrivacyError
from .events import DPEvent

if TYPE_CHECKING:
    from opacus.accountants.accountant import IAccountant

__all__ = ["KINDS", "PrivacyAccountant", "epsilon_for", "noise_multiplier_for"]

logger = logging.getLogger(__name__)

#: Accountant kinds this package supports.
KINDS: tuple[str, ...] = ("prv", "rdp")

_FORMAT = "fedrisk.dp-accountant"
_VERSION = 1


class PrivacyAccountant:
    """Records DP events and answers the ε they compose to for a given δ."""

    def __init__(self, kind: str = "rdp") -> None:
        self._kind = _check_kind(kind)
        self._events: list[DPEvent] = []

    @property
    def kind(self) -> str:
        """The accounting method: ``"rdp"`` or ``"prv"``."""
        return self._kind

    @property
    def events(self) -> tuple[DPEvent, ...]:
        """Every recorded event, in recording order."""
        return tuple(self._events)

    def record(self, event: DPEvent) -> None:
        """Add one event to the composition."""
        if not isinstance(event, DPEvent):
            raise InvalidParametersError(f"expected a DPEvent, got {type(event).__name__}")
        self._events.append(event)

    def epsilon(self, delta: float) -> float:
        """The ε of all recorded events composed, at ``delta``; 0.0 when nothing is recorded."""
        return epsilon_for(self._events, delta=delta, kind=self._kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (kind and events) for persistence."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self._kind,
            "events": [event.to_dict() for event in self._events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyAccountant:
        """Rebuild an accountant saved with :meth:`to_dict`; malformed data is a ValueError."""
        if not isinstance(data, Mapping):
            raise InvalidParametersError(
                f"accountant state must be a mapping, got {type(data).__name__}"
            )
        if data.get("format") != _FORMAT or data.get("version") != _VERSION:
            raise InvalidParametersError(
                f"not a {_FORMAT} v{_VERSION} snapshot: format={data.get('format')!r}, "
                f"version={data.get('version')!r}"
            )
        events = data.get("events")
        if not isinstance(events, list):
            raise InvalidParametersError(f"accountant events must be a list, got {events!r}")
        accountant = cls(kind=data.get("kind", ""))
        for raw in events:
            accountant.record(DPEvent.from_dict(raw))
        return accountant

    def __repr__(self) -> str:
        return f"PrivacyAccountant(kind={self._kind!r}, events={len(self._events)})"


def epsilon_for(events: Iterable[DPEvent], *, delta: float, kind: str = "rdp") -> float:
    """The ε that ``events`` compose to at ``delta`` under accountant ``kind``."""
    kind = _check_kind(kind)
    _check_delta(delta)
    history = _merge(events)
    if not history:
        return 0.0
    # Opacus is imported on first use: it costs seconds, and a participant process in
    # privacy mode ``he`` (a fresh process per Flower message) never needs it.
    from opacus.accountants import PRVAccountant, RDPAccountant

    accountant: IAccountant = RDPAccountant() if kind == "rdp" else PRVAccountant()
    accountant.history = history
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            epsilon = float(accountant.get_epsilon(delta=delta))
    except (ArithmeticError, ValueError, RuntimeError) as exc:
        raise PrivacyError(
            f"{kind} accountant failed for {len(history)} event kinds: {exc}"
        ) from exc
    _log_warnings(caught)
    if math.isnan(epsilon):
        raise PrivacyError(f"{kind} accountant returned NaN for history {history}")
    return epsilon


def noise_multiplier_for(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    kind: str = "rdp",
) -> float:
    """The smallest noise multiplier (to Opacus's 0.01-in-ε search tolerance) that keeps
    ``steps`` steps at Poisson rate ``sample_rate`` within ``(target_epsilon, delta)``."""
    kind = _check_kind(kind)
    _check_delta(delta)
    if isinstance(target_epsilon, bool) or not isinstance(target_epsilon, numbers.Real):
        raise InvalidParametersError(f"target_epsilon must be a number, got {target_epsilon!r}")
    if not (math.isfinite(target_epsilon) and target_epsilon > 0):
        raise InvalidParametersError(f"target_epsilon must be finite and > 0, got {target_epsilon}")
    probe = DPEvent(noise_multiplier=1.0, sample_rate=sample_rate, steps=steps)  # validates
    from opacus.accountants.utils import get_noise_multiplier  # slow import: see epsilon_for

    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            sigma = float(
                get_noise_multiplier(
                    target_epsilon=float(target_epsilon),
                    target_delta=float(delta),
                    sample_rate=probe.sample_rate,
                    steps=probe.steps,
                    accountant=kind,
                )
            )
    except ValueError as exc:
        raise InvalidParametersError(
            f"no noise multiplier reaches epsilon={target_epsilon} at delta={delta} with "
            f"sample_rate={sample_rate} over {steps} steps ({kind}): {exc}"
        ) from exc
    except (ArithmeticError, RuntimeError) as exc:
        raise PrivacyError(f"{kind} noise calibration failed: {exc}") from exc
    _log_warnings(caught)
    logger.debug(
        "noise multiplier %.4f for epsilon=%g delta=%g q=%g steps=%d (%s)",
        sigma,
        target_epsilon,
        delta,
        sample_rate,
        steps,
        kind,
    )
    return sigma


def _merge(events: Iterable[DPEvent]) -> list[tuple[float, float, int]]:
    """Opacus history entries ``(sigma, q, steps)``, equal (sigma, q) merged, first-seen order."""
    merged: dict[tuple[float, float], int] = {}
    for event in events:
        if not isinstance(event, DPEvent):
            raise InvalidParametersError(f"expected DPEvent objects, got {type(event).__name__}")
        key = (event.noise_multiplier, event.sample_rate)
        merged[key] = merged.get(key, 0) + event.steps
    return [(sigma, q, steps) for (sigma, q), steps in merged.items()]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidParametersError(f"accountant kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise InvalidParametersError(f"delta must be a number, got {delta!r}")
    if not (0.0 < delta < 1.0):
        raise InvalidParametersError(f"delta must be in (0, 1), got {delta}")


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Opacus/numpy warnings (e.g. the optimal RDP order at the edge of the grid) go to the log."""
    for message in {str(w.message) for w in caught}:
        logger.debug("accountant: %s", message)
