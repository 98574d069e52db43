"""A dataset's lifetime privacy budget, persisted as JSON next to the data it protects.

DESIGN.md: every round's privacy cost is charged to each participant's budget (ε per
dataset, across rounds, runs and models) and a round that would exceed the budget is
refused before it starts. This module is that one place: it keeps every charged
:class:`~privacy.dp.events.DPEvent` with its run id, model and round, composes all of them
with one accountant at the budget's own δ, and refuses a charge *before* recording it.

Durability: every change is written to a temporary file, fsync'ed and renamed over the
budget file (``os.replace``), so a crash leaves the old or the new budget, never a torn
or empty one. A file that cannot be read is an error, never a silent reset to zero. An
advisory ``flock`` on ``<file>.lock`` serialises charges from several processes, and every
method re-reads the file, so two trainers on one dataset cannot lose each other's charges.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes
from ..errors import BudgetExceededError, InvalidParametersError, PrivacyError
from .accounting import KINDS, epsilon_for
from .events import DPEvent

__all__ = ["BudgetCharge", "PrivacyBudget"]

logger = logging.getLogger(__name__)

_FORMAT = "fedrisk.privacy-budget"
_VERSION = 1


@dataclass(frozen=True)
class BudgetCharge:
    """One DP event charged to the budget, tagged with where it was spent."""

    event: DPEvent
    run_id: str
    model: str
    round: int
    charged_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.event.to_dict(),
            "run_id": self.run_id,
            "model": self.model,
            "round": self.round,
            "charged_at": self.charged_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> BudgetCharge:
        if not isinstance(data, dict):
            raise InvalidParametersError(f"a charge must be a mapping, got {data!r}")
        return cls(
            event=DPEvent.from_dict(data),
            run_id=str(data["run_id"]),
            model=str(data["model"]),
            round=int(data["round"]),
            charged_at=str(data.get("charged_at", "")),
        )


@dataclass(frozen=True)
class _State:
    dataset: str
    epsilon_limit: float
    delta: float
    kind: str
    charges: tuple[BudgetCharge, ...]


class PrivacyBudget:
    """The (ε, δ) budget of one participant dataset, stored at ``path``.

    Open it with :meth:`open` (creates the file on first use) or :meth:`load`. The limit,
    δ, accountant kind and dataset name are fixed when the file is created; opening it with
    different values is an error, so two federations cannot silently disagree about a
    dataset's budget.
    """

    def __init__(self, path: Path, state: _State) -> None:
        self._path = Path(path)
        self._dataset = state.dataset
        self._epsilon_limit = state.epsilon_limit
        self._delta = state.delta
        self._kind = state.kind

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        epsilon_limit: float,
        delta: float,
        kind: str = "rdp",
        dataset: str | None = None,
    ) -> PrivacyBudget:
        """Open the budget at ``path``, creating it with these settings if it does not exist."""
        path = Path(path)
        wanted = _State(
            dataset=dataset if dataset is not None else path.stem,
            epsilon_limit=_check_limit(epsilon_limit),
            delta=_check_delta(delta),
            kind=_check_kind(kind),
            charges=(),
        )
        with _locked(path, exclusive=True):
            if not path.exists():
                _write(path, wanted)
                logger.info(
                    "created privacy budget for dataset %s: epsilon %g at delta %g (%s)",
                    wanted.dataset,
                    wanted.epsilon_limit,
                    wanted.delta,
                    wanted.kind,
                )
                return cls(path, wanted)
            stored = _read(path)
        _check_same(path, stored, wanted, dataset_given=dataset is not None)
        return cls(path, stored)

    @classmethod
    def load(cls, path: Path) -> PrivacyBudget:
        """Open an existing budget file with the settings stored in it."""
        path = Path(path)
        with _locked(path, exclusive=False):
            if not path.exists():
                raise PrivacyError(f"no privacy budget file at {path}")
            return cls(path, _read(path))

    # -- settings ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def dataset(self) -> str:
        return self._dataset

    @property
    def epsilon_limit(self) -> float:
        return self._epsilon_limit

    @property
    def delta(self) -> float:
        return self._delta

    @property
    def kind(self) -> str:
        """The accountant (``"rdp"`` or ``"prv"``) that composes every charge."""
        return self._kind

    # -- queries -------------------------------------------------------------------------

    def charges(self) -> tuple[BudgetCharge, ...]:
        """Every charge recorded so far, oldest first (re-read from the file)."""
        return self._state().charges

    @property
    def events(self) -> tuple[DPEvent, ...]:
        """The DP events of every charge, oldest first."""
        return tuple(c.event for c in self.charges())

    def spent(self) -> float:
        """ε of everything charged so far, composed at the budget's δ."""
        return self._epsilon([c.event for c in self.charges()])

    def remaining(self) -> float:
        """How much ε is left before the limit (never below zero)."""
        return max(0.0, self._epsilon_limit - self.spent())

    def would_exceed(self, events: DPEvent | Iterable[DPEvent]) -> bool:
        """Whether charging ``events`` on top of what is spent would pass the limit."""
        planned = _as_events(events)
        if not planned:
            return False
        total = self._epsilon([*(c.event for c in self.charges()), *planned])
        return total > self._epsilon_limit

    # -- charging ------------------------------------------------------------------------

    def charge(
        self,
        events: DPEvent | Iterable[DPEvent],
        *,
        run_id: str,
        model: str,
        round: int,
    ) -> float:
        """Record ``events`` and return the new total ε; refuse without recording if over.

        Raises :class:`BudgetExceededError` (naming the dataset, the limit and the ε the
        charge would reach) before anything is written.
        """
        new = _as_events(events)
        if not new:
            raise InvalidParametersError("charge needs at least one DP event")
        _check_tag("run_id", run_id)
        _check_tag("model", model)
        if isinstance(round, bool) or not isinstance(round, numbers.Integral) or round < 0:
            raise InvalidParametersError(f"round must be an int >= 0, got {round!r}")
        with _locked(self._path, exclusive=True):
            state = _read(self._path)
            total = self._epsilon([*(c.event for c in state.charges), *new])
            if total > self._epsilon_limit:
                raise BudgetExceededError(
                    f"dataset {self._dataset!r}: charging {len(new)} DP event(s) for run "
                    f"{run_id!r}, model {model!r}, round {round} would bring epsilon to "
                    f"{total:.4f}, over its limit of {self._epsilon_limit:g} "
                    f"(delta={self._delta:g}, {self._kind}); nothing was charged"
                )
            if any(
                c.run_id == run_id and c.model == model and c.round == round for c in state.charges
            ):
                logger.warning(
                    "dataset %s: run %s model %s round %d charged again (kept: charging "
                    "twice over-counts, never under-counts)",
                    self._dataset,
                    run_id,
                    model,
                    round,
                )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            added = tuple(
                BudgetCharge(event=e, run_id=run_id, model=model, round=int(round), charged_at=now)
                for e in new
            )
            _write(self._path, replace(state, charges=state.charges + added))
        logger.info(
            "dataset %s charged %d DP event(s) (run %s, model %s, round %d): epsilon %.4f of %g",
            self._dataset,
            len(new),
            run_id,
            model,
            round,
            total,
            self._epsilon_limit,
        )
        return total

    # -- internals -----------------------------------------------------------------------

    def _state(self) -> _State:
        with _locked(self._path, exclusive=False):
            return _read(self._path)

    def _epsilon(self, events: list[DPEvent]) -> float:
        return epsilon_for(events, delta=self._delta, kind=self._kind)

    def __repr__(self) -> str:
        return (
            f"PrivacyBudget(dataset={self._dataset!r}, epsilon_limit={self._epsilon_limit:g}, "
            f"delta={self._delta:g}, kind={self._kind!r}, path={str(self._path)!r})"
        )


def _as_events(events: DPEvent | Iterable[DPEvent]) -> list[DPEvent]:
    items = [events] if isinstance(events, DPEvent) else list(events)
    for item in items:
        if not isinstance(item, DPEvent):
            raise InvalidParametersError(f"expected DPEvent objects, got {type(item).__name__}")
    return items


@contextlib.contextmanager
def _locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock on ``<path>.lock`` (shared for reads, exclusive for writes)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> _State:
    """Parse the budget file; any defect is a PrivacyError, never an empty budget."""
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise PrivacyError(f"privacy budget file {path} disappeared") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PrivacyError(_corrupt(path, f"not readable JSON: {exc}")) from exc
    try:
        if raw.get("format") != _FORMAT or raw.get("version") != _VERSION:
            raise ValueError(f"format {raw.get('format')!r} v{raw.get('version')!r}")
        charges = raw["charges"]
        if not isinstance(charges, list):
            raise ValueError("'charges' is not a list")
        return _State(
            dataset=str(raw["dataset"]),
            epsilon_limit=_check_limit(raw["epsilon_limit"]),
            delta=_check_delta(raw["delta"]),
            kind=_check_kind(raw["accountant"]),
            charges=tuple(BudgetCharge.from_dict(c) for c in charges),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PrivacyError(_corrupt(path, str(exc))) from exc


def _corrupt(path: Path, detail: str) -> str:
    return (
        f"privacy budget file {path} is corrupt ({detail}); refusing to treat it as an "
        "unspent budget: restore it from a backup or investigate before training again"
    )


def _write(path: Path, state: _State) -> None:
    document = {
        "format": _FORMAT,
        "version": _VERSION,
        "dataset": state.dataset,
        "epsilon_limit": state.epsilon_limit,
        "delta": state.delta,
        "accountant": state.kind,
        "charges": [c.to_dict() for c in state.charges],
    }
    atomic_write_bytes(path, json.dumps(document, indent=1).encode("utf-8"), mode=0o600)


def _check_same(path: Path, stored: _State, wanted: _State, *, dataset_given: bool) -> None:
    differences = [
        f"{name} {getattr(stored, name)!r} (asked {getattr(wanted, name)!r})"
        for name in ("epsilon_limit", "delta", "kind")
        if getattr(stored, name) != getattr(wanted, name)
    ]
    if dataset_given and stored.dataset != wanted.dataset:
        differences.append(f"dataset {stored.dataset!r} (asked {wanted.dataset!r})")
    if differences:
        raise InvalidParametersError(
            f"privacy budget {path} was created with "
            + ", ".join(differences)
            + "; a dataset's budget settings are fixed when it is created"
        )


def _check_limit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParametersError(f"epsilon_limit must be a number, got {value!r}")
    if not (math.isfinite(value) and float(value) > 0):
        raise InvalidParametersError(f"epsilon_limit must be finite and > 0, got {value}")
    return float(value)


def _check_delta(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParametersError(f"delta must be a number, got {value!r}")
    if not (0.0 < float(value) < 1.0):
        raise InvalidParametersError(f"delta must be in (0, 1), got {value}")
    return float(value)


def _check_kind(value: Any) -> str:
    if value not in KINDS:
        raise InvalidParametersError(f"accountant kind must be one of {KINDS}, got {value!r}")
    return str(value)


def _check_tag(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidParametersError(f"{name} must be a non-empty string, got {value!r}")
