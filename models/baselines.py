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


@dataclass(frozen=True)
class VerticalBaselines:
    """AUC on the vertical holdout of the label holder alone, of the pooled (joined)
    logistic regression (the limit of vertical LR), and of gradient-boosted trees on the
    joined rows (what a nonlinear model could reach)."""

    guest_only_auc: float
    centralized_auc: float
    centralized_gbt_auc: float
    aligned_rows: int
    holdout_rows: int


@dataclass(frozen=True)
class AlignedRows:
    """A vertical federation's shared rows, pooled: what no party may hold in production.

    Rows are the ids every party holds, in sorted-id order, split as the federation splits
    them (:func:`privacy.vertical.holdout_split`), so figures computed on them compare with
    the federation's holdout AUC row for row.
    """

    own: np.ndarray
    hosts: tuple[np.ndarray, ...]
    labels: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def joined(self) -> np.ndarray:
        return np.hstack([self.own, *self.hosts])


def align_rows(
    guest: TabularData, hosts: Mapping[str, TabularData], *, holdout: float, seed: int
) -> AlignedRows:
    """The guest's and each host's features of the ids they all hold, with the labels."""
    from privacy.vertical import holdout_split

    if guest.labels is None:
        raise ValueError("the label holder's table has no labels")
    shared = set(map(str, guest.ids))
    for table in hosts.values():
        shared &= set(map(str, table.ids))
    ids = sorted(shared)
    if not ids:
        raise ValueError("the parties share no ids")

    def rows(table: TabularData) -> np.ndarray:
        where = {str(i): n for n, i in enumerate(table.ids)}
        return np.array([where[i] for i in ids], dtype=np.int64)

    at_guest = rows(guest)
    train, test = holdout_split(len(ids), holdout=holdout, seed=seed)
    return AlignedRows(
        own=guest.features[at_guest].astype(np.float64),
        hosts=tuple(t.features[rows(t)].astype(np.float64) for t in hosts.values()),
        labels=guest.labels[at_guest].astype(np.int64),
        train=train,
        test=test,
    )


def run_vertical_baselines(
    guest: TabularData,
    hosts: Mapping[str, TabularData],
    *,
    holdout: float,
    seed: int,
) -> VerticalBaselines:
    """The references of a vertical federation, on its own aligned rows and holdout
    (:func:`align_rows`): LR on the guest's features alone, LR and gradient-boosted trees
    on the pooled features."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    aligned = align_rows(guest, hosts, holdout=holdout, seed=seed)
    labels, train, test = aligned.labels, aligned.train, aligned.test

    def auc(model: object, features: np.ndarray) -> float:
        model.fit(features[train], labels[train])  # type: ignore[attr-defined]
        scores = model.predict_proba(features[test])[:, 1]  # type: ignore[attr-defined]
        return float(roc_auc_score(labels[test], scores))

    def logistic() -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    joined = aligned.joined
    return VerticalBaselines(
        guest_only_auc=auc(logistic(), aligned.own),
        centralized_auc=auc(logistic(), joined),
        centralized_gbt_auc=auc(HistGradientBoostingClassifier(random_state=seed), joined),
        aligned_rows=int(labels.size),
        holdout_rows=int(test.size),
    )
