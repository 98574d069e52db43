"""The point of the demo: a model over all factory nodes beats the best single node.

Each park sees a different slice of the indicator space, so a model trained at one park
misjudges firms of the others. Measured on the steward's pooled evaluation set with
scikit-learn; the federated model is approximated by training on the union of the nodes
(what FedAvg converges towards without privacy noise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from participants.demo.factory_node import simulate_factory_node
from participants.demo.profiles import factory_profile
from participants.demo.timeline import observation_window
from tests.participants.test_demo_support import (
    federation_gap,
    logistic_regression,
    small_mlp,
    small_scenario,
)

MARGIN = 0.02
"""Minimum AUC advantage of all nodes over the best single node."""


def _scenario_tables() -> tuple[list[pd.DataFrame], pd.DataFrame]:
    manifest = small_scenario()
    nodes = [
        pd.read_csv(manifest.path(n.dataset("indicators").file)) for n in manifest.factory_nodes
    ]
    return nodes, pd.read_csv(manifest.path(manifest.eval_file))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("model", [logistic_regression, small_mlp], ids=["logreg", "mlp"])
def test_all_nodes_beat_the_best_single_node(model: object) -> None:
    nodes, evaluation = _scenario_tables()

    all_nodes, best_single = federation_gap(nodes, evaluation, model)  # type: ignore[arg-type]

    assert all_nodes >= best_single + MARGIN, (all_nodes, best_single)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gap_holds_across_seeds(seed: int) -> None:
    window = observation_window(months=12)
    nodes, evaluation = [], []
    for i in range(6):
        profile = factory_profile(i)
        rng = np.random.default_rng([seed, 13, i])
        nodes.append(simulate_factory_node(profile, window, rng, n_firms=40).indicators)
        rng = np.random.default_rng([seed, 14, i])
        evaluation.append(simulate_factory_node(profile, window, rng, n_firms=60).indicators)
    pooled_eval = pd.concat(evaluation, ignore_index=True)

    for model in (logistic_regression, small_mlp):
        all_nodes, best_single = federation_gap(nodes, pooled_eval, model)
        assert all_nodes >= best_single + MARGIN, (model.__name__, all_nodes, best_single)
