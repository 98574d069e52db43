"""Split NN with DP at the cut layer: learns a nonlinear joint signal; clipping, noise, events."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from privacy.dp.accounting import epsilon_for
from privacy.errors import InvalidParametersError
from privacy.vertical import (
    PlainCodec,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    run_epoch,
)
from privacy.vertical.split_nn import (
    CutLayerDP,
    SplitNNConfig,
    SplitNNGuest,
    SplitNNHost,
    poisson_batches,
    run_split_epoch,
)


def _xor_data(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The label is an interaction of one guest and one host feature: no linear model fits."""
    rng = np.random.default_rng(seed)
    xg, xh = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    logit = 2.5 * np.sign(xg[:, 0] * xh[:, 0]) + 0.5 * xg[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return xg, xh, y


def _split(config: SplitNNConfig, xg, xh, y, *, epochs: int):  # type: ignore[no-untyped-def]
    guest = SplitNNGuest(xg, y, config=config, hosts=1)
    host = SplitNNHost(xh, config=config)
    for epoch in range(epochs):
        run_split_epoch(guest, [host], epoch=epoch)
    return guest, host


def test_split_nn_beats_vertical_lr_on_a_nonlinear_joint_signal() -> None:
    xg, xh, y = _xor_data()
    tr, te = slice(0, 3_000), slice(3_000, None)
    config = SplitNNConfig(
        learning_rate=0.01,
        activation_dp=CutLayerDP(clip_norm=4.0, noise_multiplier=0.3),
        gradient_dp=CutLayerDP(clip_norm=0.05, noise_multiplier=0.3),
    )

    guest, host = _split(config, xg[tr], xh[tr], y[tr], epochs=12)
    split_auc = roc_auc_score(y[te], guest.logits(xg[te], [host.cut(xh[te])]))
    lr_config = VerticalLRConfig(batch_rows=500)
    lr_guest = VerticalLRGuest(xg[tr], y[tr], codec=PlainCodec(), config=lr_config)
    lr_host = VerticalLRHost(xh[tr], codec=PlainCodec(), config=lr_config)
    for epoch in range(6):
        run_epoch(lr_guest, [lr_host], epoch=epoch, seed=0)
    lr_auc = roc_auc_score(y[te], lr_guest.logits(xg[te], [lr_host.score_part(xh[te])]))

    assert split_auc > lr_auc + 0.1
    assert split_auc > 0.75


def test_released_activations_are_clipped_and_noised() -> None:
    _, xh, _ = _xor_data(n=600)
    dp = CutLayerDP(clip_norm=1.0, noise_multiplier=2.0)
    config = SplitNNConfig(activation_dp=dp, gradient_dp=None)
    host = SplitNNHost(xh * 100.0, config=config)  # large activations, so clipping binds
    rows = np.arange(600)

    released = host.forward(rows)
    exact = host.cut(xh * 100.0)

    noise = released - exact * np.minimum(1.0, 1.0 / np.linalg.norm(exact, axis=1, keepdims=True))
    assert abs(noise.std() - 2.0) < 0.2  # sd = multiplier x clip, within 10 %
    assert not np.allclose(released, exact)


def test_clipping_bounds_every_row_without_noise() -> None:
    dp = CutLayerDP(clip_norm=0.5, noise_multiplier=1e-9)
    rows = np.random.default_rng(0).normal(0, 10, size=(100, 8))

    out = dp.apply(rows, np.random.default_rng(1))

    assert np.all(np.linalg.norm(out, axis=1) <= 0.5 + 1e-6)


def test_dp_events_count_steps_at_the_poisson_rate() -> None:
    xg, xh, y = _xor_data(n=1_000)
    config = SplitNNConfig(batch_rows=100)

    guest, _ = _split(config, xg, xh, y, epochs=2)
    events = guest.dp_events()

    assert set(events) == {"activations", "gradients"}
    assert events["activations"].steps == 20 and events["activations"].sample_rate == 0.1
    assert 0 < epsilon_for([events["gradients"]], delta=1e-5) < 100


def test_no_dp_means_no_events_and_exact_releases() -> None:
    xg, xh, y = _xor_data(n=300)
    config = SplitNNConfig(activation_dp=None, gradient_dp=None)
    host = SplitNNHost(xh, config=config)

    assert np.allclose(host.forward(np.arange(10)), host.cut(xh[:10]), atol=1e-6)
    assert SplitNNGuest(xg, y, config=config, hosts=1).dp_events() == {}


def test_poisson_batches_have_the_expected_size() -> None:
    batches = poisson_batches(10_000, rate=0.05, steps=50, rng=np.random.default_rng(0))

    sizes = np.array([b.size for b in batches])
    assert abs(sizes.mean() - 500) < 25


def test_bad_gradients_and_settings_are_refused() -> None:
    xg, xh, y = _xor_data(n=100)
    host = SplitNNHost(xh, config=SplitNNConfig())

    with pytest.raises(InvalidParametersError, match="without a forward"):
        host.backward(np.zeros((5, 8)))
    host.forward(np.arange(5))
    with pytest.raises(InvalidParametersError, match="gradient of shape"):
        host.backward(np.zeros((4, 8)))
    with pytest.raises(InvalidParametersError):
        CutLayerDP(clip_norm=0.0)
    with pytest.raises(InvalidParametersError, match="one per row"):
        SplitNNGuest(xg, y[:50], config=SplitNNConfig(), hosts=1)
