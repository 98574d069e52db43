"""Timing probes on the coordinator's side of a federation (measurement only).

The coordinator's ServerApp runs in this process (Flower's simulation runtime runs it in a
thread), so its phases can be timed by wrapping a few functions for the duration of one
run: pushing the train messages, receiving and aggregating the replies as they arrive,
and inside encrypted aggregation the per-update check-and-add and the decryption round
trip. Nothing is changed but the clock; everything is restored afterwards. A probe whose
target no longer exists (the code moved) is skipped and reported as missing.
"""

from __future__ import annotations

import functools
import importlib
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: (label, module, attribute path) — the round counter ticks on the first. The strategies
#: read replies as they arrive, so their ``aggregate_train`` spans the whole wait for the
#: participants (local training, encryption, transport) plus the aggregation itself.
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("push of the train messages", "coordinator.rounds", "_train_round"),
    (
        "replies and aggregation (plain FedAvg)",
        "coordinator.strategies.fedavg",
        "FedAvg.aggregate_train",
    ),
    (
        "replies and aggregation (encrypted, total)",
        "coordinator.strategies.encrypted_aggregation",
        "EncryptedAggregation.aggregate_train",
    ),
    ("check and add one update", "privacy.he.updates", "EncryptedSum.add"),
    (
        "decryption round trip",
        "coordinator.strategies.encrypted_aggregation",
        "EncryptedAggregation._decrypt",
    ),
    ("evaluation of the global model", "coordinator.rounds", "_evaluate"),
    ("checkpoint", "coordinator.rounds", "save_checkpoint"),
)
ROUND_TICK = TARGETS[0][0]


@dataclass
class PhaseTimes:
    """Seconds per phase per round (round 1 first), summed over calls within a round."""

    per_round: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missing: list[str] = field(default_factory=list)

    def median(self, label: str, *, skip_first: bool = True) -> float | None:
        """Median over rounds of a phase's seconds per round (round 1 left out)."""
        rounds = self.per_round.get(label)
        if not rounds:
            return None
        values = [v for r, v in sorted(rounds.items()) if not (skip_first and r == 1)]
        return float(statistics.median(values or list(rounds.values())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s_per_round": {label: self.median(label) for label in self.per_round},
            "per_round_s": {k: dict(v) for k, v in self.per_round.items()},
            "calls": dict(self.calls),
            "missing": self.missing,
        }


def _resolve(module: str, path: str) -> tuple[Any, str] | None:
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name, None)
        if owner is None:
            return None
    if not callable(getattr(owner, attr, None)):
        return None
    return owner, attr


@contextmanager
def coordinator_phases() -> Iterator[PhaseTimes]:
    """Time the coordinator's phases of the federations run inside the ``with`` block."""
    times = PhaseTimes()
    lock = threading.Lock()
    state = {"round": 0}
    restore: list[tuple[Any, str, Any]] = []

    def wrap(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if label == ROUND_TICK:
                with lock:
                    state["round"] += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                with lock:
                    current = state["round"]
                    bucket = times.per_round[label]
                    bucket[current] = bucket.get(current, 0.0) + took
                    times.calls[label] += 1

        return timed

    for label, module, path in TARGETS:
        found = _resolve(module, path)
        if found is None:
            times.missing.append(f"{module}.{path}")
            continue
        owner, attr = found
        original = owner.__dict__.get(attr, getattr(owner, attr))
        restore.append((owner, attr, original))
        setattr(owner, attr, wrap(label, getattr(owner, attr)))
    try:
        yield times
    finally:
        for owner, attr, original in reversed(restore):
            setattr(owner, attr, original)
