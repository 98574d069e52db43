"""Non-federated reference points: pooled (centralized) training and each party alone.

Used by the demo and the benchmarks to show what federation buys: the federated model is
compared with the limit (all rows pooled, which the law forbids in production) and with the
best model any single participant could train on its own rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .standardization import Standardization, standardization_from
from .tabular import TabularData
from .training import evaluate, train_centralized

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineResult:
    """AUC of the pooled model and of each participant's own model on the evaluation set."""

    centralized_auc: float
    single_auc: dict[str, float]

    @property
    def best_single(self) -> tuple[str, float]:
        name = max(self.single_auc, key=lambda k: self.single_auc[k])
        return name, self.single_auc[name]


def run_baselines(
    parts: Mapping[str, TabularData],
    evaluation: TabularData,
    *,
    kind: str,
    hidden: Sequence[int] = (),
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 0.01,
    seed: int,
    standardization: Standardization | None = None,
) -> BaselineResult:
    """Train the pooled model and one model per participant; evaluate all on one set."""
    if evaluation.labels is None:
        raise ValueError("the evaluation set needs labels")
    norm = standardization or standardization_from(evaluation)

    def auc_of(features: np.ndarray, labels: np.ndarray) -> float:
        model = train_centralized(
            features,
            labels,
            kind=kind,
            hidden=hidden,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            feature_shift=norm.shift,
            feature_scale=norm.scale,
        )
        assert evaluation.labels is not None
        return evaluate(model, evaluation.features, evaluation.labels).auc

    pooled_x = np.concatenate([p.features for p in parts.values()])
    pooled_y = np.concatenate([p.labels for p in parts.values() if p.labels is not None])
    centralized = auc_of(pooled_x, pooled_y)
    single = {}
    for name, part in parts.items():
        if part.labels is None or len(np.unique(part.labels)) < 2:
            logger.warning("participant %s has a single class: no single-party model", name)
            continue
        single[name] = auc_of(part.features, part.labels)
    return BaselineResult(centralized_auc=centralized, single_auc=single)
