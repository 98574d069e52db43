"""Stop a federation when its evaluation AUC plateaus, and record why it stopped.

Rounds cost privacy budget and time; once the steward's evaluation AUC has not improved by
``min_delta`` for ``patience`` rounds in a row, more rounds buy nothing worth their ε. A
failed round (no new model) counts as a round without improvement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.federation import EarlyStoppingSpec


@dataclass
class PlateauStop:
    """Patience and minimum gain over the best AUC so far (Keras' EarlyStopping rule)."""

    patience: int
    min_delta: float
    best_auc: float | None = None
    best_round: int | None = None
    stale: int = 0
    stopped_at: int | None = None

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")

    @classmethod
    def from_spec(cls, spec: EarlyStoppingSpec) -> PlateauStop:
        return cls(patience=spec.patience, min_delta=spec.min_delta)

    def observe(self, server_round: int, auc: float | None) -> bool:
        """Take a round's AUC; True once the plateau has lasted ``patience`` rounds."""
        if auc is not None and (self.best_auc is None or auc >= self.best_auc + self.min_delta):
            self.best_auc, self.best_round, self.stale = auc, server_round, 0
        else:
            # A gain below min_delta does not move the reference: a slow climb still
            # resets the count once its gains add up to min_delta.
            self.stale += 1
        if self.stale >= self.patience and self.stopped_at is None:
            self.stopped_at = server_round
        return self.stopped_at is not None

    def record(self, *, rounds_run: int, rounds_planned: int) -> dict[str, Any]:
        """Why the federation stopped, for the report's ``final.stopped``."""
        if self.stopped_at is None:
            return {"reason": "rounds_completed", "round": rounds_run, "planned": rounds_planned,
                    "best_round": self.best_round, "best_auc": self.best_auc}  # fmt: skip
        return {
            "reason": "plateau",
            "round": rounds_run,
            "planned": rounds_planned,
            "detected_at_round": self.stopped_at,
            "best_round": self.best_round,
            "best_auc": self.best_auc,
            "patience": self.patience,
            "min_delta": self.min_delta,
        }
