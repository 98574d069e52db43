"""Training and evaluation primitives (models/training.py), plain and under Opacus."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from opacus import GradSampleModule, PrivacyEngine
from opacus.optimizers import DPOptimizer
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn

from models.nets import build_network
from models.parameters import get_flat, set_flat
from models.training import evaluate, make_loader, train_centralized, train_local


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Tiny batches: intra-op threads only add synchronisation (10x slower on a busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _separable(n: int = 400, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = np.linspace(1.0, -1.0, d)
    y = (x @ w > 0).astype(np.float32)
    return x, y


def _sgd(model: nn.Module, lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr)


def _distance(model: nn.Module, start: np.ndarray) -> float:
    return float(np.linalg.norm(get_flat(model) - start))


def test_make_loader_is_reproducible_per_seed() -> None:
    x, y = _separable(n=50)

    first = [b[1].tolist() for b in make_loader(x, y, batch_size=16, seed=3)]
    again = [b[1].tolist() for b in make_loader(x, y, batch_size=16, seed=3)]
    other = [b[1].tolist() for b in make_loader(x, y, batch_size=16, seed=4)]

    assert first == again
    assert first != other
    assert [len(b) for b in first] == [16, 16, 16, 2]


def test_make_loader_refuses_mismatched_rows_and_bad_batch() -> None:
    x, y = _separable(n=10)

    with pytest.raises(ValueError, match="features have 10 rows but labels have 9"):
        make_loader(x, y[:9], batch_size=4, seed=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        make_loader(x, y, batch_size=0, seed=0)


def test_train_local_reduces_loss_and_counts_steps() -> None:
    x, y = _separable()
    model = build_network("logistic", n_features=4, seed=0)
    before = evaluate(model, x, y)

    stats = train_local(model, make_loader(x, y, batch_size=32, seed=0), _sgd(model), epochs=3)

    after = evaluate(model, x, y)
    assert stats.steps == 3 * math.ceil(400 / 32)
    assert stats.examples == 3 * 400
    assert after.log_loss < 0.7 * before.log_loss
    assert after.auc > 0.98


def test_fedprox_with_large_mu_stays_nearer_the_global_model() -> None:
    x, y = _separable()
    start = get_flat(build_network("mlp", n_features=4, hidden=(8,), seed=1))
    distances = {}
    for mu in (0.0, 5.0):
        model = build_network("mlp", n_features=4, hidden=(8,), seed=1)
        loader = make_loader(x, y, batch_size=32, seed=0)
        train_local(model, loader, _sgd(model), epochs=3, proximal_mu=mu)
        distances[mu] = _distance(model, start)

    assert distances[5.0] < 0.5 * distances[0.0]


def test_fedprox_anchor_shape_is_checked() -> None:
    x, y = _separable(n=20)
    model = build_network("logistic", n_features=4, seed=0)

    with pytest.raises(ValueError, match=r"global_params\[0\]: expected shape \(1, 4\)"):
        train_local(
            model,
            make_loader(x, y, batch_size=8, seed=0),
            _sgd(model),
            epochs=1,
            proximal_mu=0.1,
            global_params=[torch.zeros(4), torch.zeros(1)],
        )


def test_evaluate_matches_sklearn_on_a_fixed_example() -> None:
    model = build_network("logistic", n_features=2, seed=0)
    set_flat(model, np.array([1.0, -2.0, 0.5]))
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [-1.0, 3.0]], np.float32)
    y = np.array([1, 1, 0, 0, 0], dtype=np.float32)
    probabilities = 1.0 / (1.0 + np.exp(-(x @ np.array([1.0, -2.0]) + 0.5)))

    metrics = evaluate(model, x, y)

    assert metrics.n == 5
    assert metrics.positive_rate == pytest.approx(0.4)
    assert metrics.auc == pytest.approx(roc_auc_score(y, probabilities))
    assert metrics.log_loss == pytest.approx(log_loss(y, probabilities), rel=1e-6)


def test_evaluate_single_class_gives_nan_auc_and_finite_log_loss() -> None:
    model = build_network("logistic", n_features=4, seed=0)
    x, _ = _separable(n=10)

    metrics = evaluate(model, x, np.zeros(10, dtype=np.float32))

    assert math.isnan(metrics.auc)
    assert math.isfinite(metrics.log_loss)


def test_train_centralized_fits_separable_data() -> None:
    x, y = _separable()

    model = train_centralized(x, y, kind="mlp", hidden=(8,), epochs=5, batch_size=32, seed=0)

    assert evaluate(model, x, y).auc > 0.98


# --- under Opacus ---------------------------------------------------------------------------
# Opacus' per-sample hooks make torch warn that inputs need no gradient: expected here.
OPACUS_HOOK_WARNING = "ignore:Full backward hook is firing"


def _private(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, noise: float
) -> tuple[nn.Module, torch.optim.Optimizer, torch.utils.data.DataLoader[tuple[torch.Tensor, ...]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns that secure_mode is off: fine in tests
        private_model, optimizer, loader = PrivacyEngine(secure_mode=False).make_private(
            module=model,
            optimizer=_sgd(model),
            data_loader=make_loader(x, y, batch_size=32, seed=0),
            noise_multiplier=noise,
            max_grad_norm=1.0,
            poisson_sampling=True,
        )
    return private_model, optimizer, loader


@pytest.mark.filterwarnings(OPACUS_HOOK_WARNING)
def test_train_local_runs_under_opacus_poisson_sampling() -> None:
    torch.manual_seed(0)  # Opacus draws Poisson batches and noise from torch's global RNG
    x, y = _separable()
    model, optimizer, loader = _private(
        build_network("logistic", n_features=4, seed=0), x, y, noise=0.5
    )

    stats = train_local(model, loader, optimizer, epochs=2)

    assert stats.steps == 2 * len(loader)
    assert 0 < stats.examples < 2 * 2 * 400
    assert evaluate(model, x, y).auc > 0.9


@pytest.mark.filterwarnings(OPACUS_HOOK_WARNING)
def test_fedprox_term_survives_dp_sgd() -> None:
    x, y = _separable()
    start = get_flat(build_network("logistic", n_features=4, seed=0))
    distances = {}
    for mu in (0.0, 5.0):
        torch.manual_seed(1)
        model, optimizer, loader = _private(
            build_network("logistic", n_features=4, seed=0), x, y, noise=0.0
        )
        train_local(model, loader, optimizer, epochs=3, proximal_mu=mu)
        distances[mu] = _distance(model, start)

    assert distances[5.0] < 0.5 * distances[0.0]


@pytest.mark.filterwarnings(OPACUS_HOOK_WARNING)
def test_empty_poisson_batch_is_a_noise_only_step() -> None:
    x, y = _separable(n=8)
    inner = build_network("logistic", n_features=4, seed=0)
    start = get_flat(inner)
    model = GradSampleModule(inner)
    optimizer = DPOptimizer(
        _sgd(model), noise_multiplier=0.0, max_grad_norm=1.0, expected_batch_size=8
    )
    empty = (torch.zeros(0, 4), torch.zeros(0))

    only_empty = train_local(model, [empty], optimizer, epochs=1)
    unchanged = get_flat(model)
    mixed = train_local(
        model, [empty, (torch.from_numpy(x), torch.from_numpy(y))], optimizer, epochs=1
    )

    assert (only_empty.steps, only_empty.examples) == (1, 0)
    assert math.isnan(only_empty.mean_loss)
    assert np.array_equal(unchanged, start)
    assert (mixed.steps, mixed.examples) == (2, 8)
    assert math.isfinite(mixed.mean_loss)
    assert np.all(np.isfinite(get_flat(model)))
    assert not np.array_equal(get_flat(model), start)
