"""Builders shared by the demo-scenario tests (this module holds no tests).

Scenarios are expensive to generate, so each configuration is generated once per test
session into a temporary folder and shared read-only.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from participants.demo import INDICATOR_COLUMNS, ScenarioManifest, generate_scenario

SMALL = {
    "n_farmers": 300,
    "n_smes": 300,
    "firms_per_factory": 40,
    "n_eval_firms": 360,
}
"""A scenario small enough for the default suite, large enough for the AUC comparison."""

TINY = {
    "n_farmers": 40,
    "n_smes": 40,
    "n_factories": 2,
    "firms_per_factory": 3,
    "n_eval_firms": 4,
}
"""The smallest scenario that still has every kind of node, for byte-level comparisons."""


def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="fedrisk-demo-test-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@cache
def small_scenario(seed: int = 7) -> ScenarioManifest:
    """The shared small scenario for ``seed`` (generated once per session)."""
    return generate_scenario(_scratch() / "scenario", seed=seed, **SMALL)  # type: ignore[arg-type]


def tiny_scenario(root: Path, seed: int) -> ScenarioManifest:
    """A fresh tiny scenario under ``root``."""
    return generate_scenario(root, seed=seed, **TINY)  # type: ignore[arg-type]


def logistic_regression() -> Pipeline:
    """The linear baseline of the federation comparison."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def small_mlp() -> Pipeline:
    """A small multilayer perceptron: one hidden layer of 8, L2 penalty 1.0, seeded, and a
    budget of 100 epochs (about what a federation's rounds give it; stops before it has
    memorised every firm)."""
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(8,), alpha=1.0, max_iter=100, random_state=0),
    )


def federation_gap(
    nodes: list[pd.DataFrame], evaluation: pd.DataFrame, make_model: Callable[[], Pipeline]
) -> tuple[float, float]:
    """(AUC of a model trained on all nodes, best AUC of a model trained on one node).

    Both are measured on the pooled evaluation set; a node whose labels are all one class
    cannot train a model and is skipped.
    """
    features = list(INDICATOR_COLUMNS)

    def auc(train: pd.DataFrame) -> float:
        model = make_model().fit(train[features], train["label"])
        scores = model.predict_proba(evaluation[features])[:, 1]
        return float(roc_auc_score(evaluation["label"], scores))

    singles = [auc(node) for node in nodes if node["label"].nunique() == 2]
    return auc(pd.concat(nodes, ignore_index=True)), float(np.max(singles))
