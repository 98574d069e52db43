"""Networks (models/nets.py) and parameter transfer (models/parameters.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.validators import ModuleValidator
from torch import nn

from models.errors import ParameterShapeError
from models.nets import NetworkConfig, build_network, network_config, predict_proba
from models.parameters import (
    count_parameters,
    from_arrays,
    get_flat,
    parameter_names,
    plain_state_dict,
    set_flat,
    to_arrays,
)


def _mlp(seed: int = 0) -> nn.Module:
    return build_network("mlp", n_features=5, hidden=(8, 4), seed=seed)


def _logistic(seed: int = 0) -> nn.Module:
    return build_network("logistic", n_features=5, seed=seed)


# --- networks ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_same_seed_gives_same_parameters_and_other_seed_differs(kind: str) -> None:
    hidden = (8, 4) if kind == "mlp" else ()

    first = build_network(kind, n_features=5, hidden=hidden, seed=7)
    again = build_network(kind, n_features=5, hidden=hidden, seed=7)
    other = build_network(kind, n_features=5, hidden=hidden, seed=8)

    assert np.array_equal(get_flat(first), get_flat(again))
    assert not np.array_equal(get_flat(first), get_flat(other))


def test_building_leaves_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()

    _mlp(seed=3)

    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("net", [_logistic(), _mlp()], ids=["logistic", "mlp"])
def test_output_is_one_logit_per_row(net: nn.Module) -> None:
    logits = net(torch.zeros(6, 5))

    assert logits.shape == (6, 1)


@pytest.mark.parametrize("net", [_logistic(), _mlp()], ids=["logistic", "mlp"])
def test_networks_are_opacus_compatible(net: nn.Module) -> None:
    assert ModuleValidator.validate(net, strict=False) == []


def test_mlp_layer_sizes_follow_hidden() -> None:
    net = _mlp()

    shapes = [tuple(p.shape) for p in net.parameters()]

    assert shapes == [(8, 5), (8,), (4, 8), (4,), (1, 4), (1,)]
    assert network_config(net) == NetworkConfig(kind="mlp", n_features=5, hidden=(8, 4))


@pytest.mark.parametrize(
    ("kind", "hidden", "message"),
    [
        ("tree", (), "unknown network kind 'tree'"),
        ("logistic", (4,), "no hidden layers"),
        ("mlp", (), "at least one hidden layer"),
        ("mlp", (4, 0), "widths must be >= 1"),
    ],
)
def test_invalid_architectures_are_refused(
    kind: str, hidden: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_network(kind, n_features=3, hidden=hidden, seed=0)


def test_predict_proba_is_sigmoid_of_logit_and_restores_mode() -> None:
    net = _mlp()
    net.train()
    x = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)

    probabilities = predict_proba(net, x)

    expected = torch.sigmoid(net(torch.from_numpy(x))).detach().numpy().reshape(-1)
    assert probabilities.shape == (20,)
    assert np.allclose(probabilities, expected, atol=1e-7)
    assert net.training


# --- parameters ----------------------------------------------------------------------------


def test_flat_round_trip_moves_parameters_between_networks() -> None:
    source, target = _mlp(seed=1), _mlp(seed=2)

    set_flat(target, get_flat(source))

    assert get_flat(source).dtype == np.float64
    assert get_flat(target).shape == (count_parameters(source),)
    assert np.array_equal(get_flat(target), get_flat(source))


def test_array_round_trip_moves_parameters_between_networks() -> None:
    source, target = _mlp(seed=1), _mlp(seed=2)

    from_arrays(target, to_arrays(source))

    assert all(
        np.array_equal(a, b) for a, b in zip(to_arrays(source), to_arrays(target), strict=True)
    )


def test_set_flat_wrong_length_names_expected_and_actual() -> None:
    net = _mlp()
    n = count_parameters(net)

    with pytest.raises(ValueError, match=f"expected length {n}, got shape \\({n + 1},\\)"):
        set_flat(net, np.zeros(n + 1))


def test_from_arrays_wrong_shape_is_refused_and_model_unchanged() -> None:
    net = _mlp()
    before = get_flat(net)
    arrays = to_arrays(net)
    arrays[2] = arrays[2].T  # (4, 8) -> (8, 4): a malformed update

    with pytest.raises(ParameterShapeError, match=r"parameter 2 \('layers.2.weight'\)"):
        from_arrays(net, arrays)

    assert np.array_equal(get_flat(net), before)


def test_from_arrays_wrong_count_and_non_finite_are_refused() -> None:
    net = _mlp()
    arrays = to_arrays(net)
    poisoned = [a.copy() for a in arrays]
    poisoned[0][0, 0] = np.nan

    with pytest.raises(ParameterShapeError, match="expected 6 parameter arrays, got 5"):
        from_arrays(net, arrays[:-1])
    with pytest.raises(ParameterShapeError, match="non-finite"):
        from_arrays(net, poisoned)


def test_opacus_wrapped_model_transfers_like_the_plain_one() -> None:
    plain = _mlp(seed=1)
    wrapped = GradSampleModule(_mlp(seed=1))
    update = get_flat(_mlp(seed=5))

    names = parameter_names(wrapped)
    arrays_equal = all(
        np.array_equal(a, b) for a, b in zip(to_arrays(wrapped), to_arrays(plain), strict=True)
    )
    set_flat(wrapped, update)

    assert names == parameter_names(plain)
    assert not any(name.startswith("_module.") for name in names)
    assert arrays_equal
    assert np.array_equal(get_flat(wrapped._module), update)
    assert set(plain_state_dict(wrapped)) == set(plain.state_dict())
