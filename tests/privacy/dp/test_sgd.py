"""DP-SGD through Opacus: a plain Sequential trains, the round's DP event is exact, epsilon
composes across rounds, and per-sample clipping bounds each record's influence."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privacy.dp.accounting import epsilon_for
from privacy.dp.events import DPEvent
from privacy.dp.sgd import PrivateTraining, dp_event_for, make_private
from privacy.errors import InvalidParametersError, PrivacyError

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")

N_ROWS = 512
BATCH = 64


def separable_data(seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(N_ROWS, 4, generator=generator)
    labels = (features[:, 0] + features[:, 1] > 0).long()
    return TensorDataset(features, labels)


def build(seed: int = 0, *, hidden: int = 16) -> tuple[nn.Sequential, torch.optim.SGD]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.5)


def train(private: PrivateTraining, *, epochs: int) -> tuple[int, float]:
    """Plain training loop on the private objects; returns (optimizer steps, last loss)."""
    loss_fn = nn.CrossEntropyLoss()
    steps, loss = 0, math.nan
    for _ in range(epochs):
        for features, labels in private.data_loader:
            private.optimizer.zero_grad()
            batch_loss = loss_fn(private.model(features), labels)
            batch_loss.backward()
            private.optimizer.step()
            steps, loss = steps + 1, float(batch_loss.detach())
    return steps, loss


def test_plain_sequential_trains_with_dp_sgd() -> None:
    # Arrange
    data = separable_data()
    model, optimizer = build()
    private = make_private(
        model=model,
        optimizer=optimizer,
        data_loader=DataLoader(data, batch_size=BATCH),
        noise_multiplier=0.5,
        max_grad_norm=1.0,
    )

    # Act
    train(private, epochs=8)
    plain = private.release()
    accuracy = float((plain(data.tensors[0]).argmax(1) == data.tensors[1]).float().mean())

    # Assert
    assert isinstance(plain, nn.Sequential)
    assert accuracy > 0.85


def test_dp_event_reports_sample_rate_and_steps_taken() -> None:
    # Arrange
    model, optimizer = build()
    private = make_private(
        model=model,
        optimizer=optimizer,
        data_loader=DataLoader(separable_data(), batch_size=BATCH),
        noise_multiplier=1.1,
        max_grad_norm=1.0,
    )

    # Act
    steps, _ = train(private, epochs=2)
    event = dp_event_for(private)

    # Assert
    assert private.sample_rate == pytest.approx(BATCH / N_ROWS)
    assert steps == 2 * (N_ROWS // BATCH)
    assert event == DPEvent(noise_multiplier=1.1, sample_rate=BATCH / N_ROWS, steps=steps)
    with pytest.raises(InvalidParametersError, match="under-count"):
        dp_event_for(private, steps=steps - 1)


def test_epsilon_grows_with_every_round() -> None:
    # Arrange
    data = separable_data()
    model, _ = build()
    events: list[DPEvent] = []
    epsilons: list[float] = []

    # Act: a fresh engine per round on the same module, composed by the accountant.
    for _ in range(3):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        private = make_private(
            model=model,
            optimizer=optimizer,
            data_loader=DataLoader(data, batch_size=BATCH),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )
        train(private, epochs=1)
        events.append(dp_event_for(private))
        epsilons.append(epsilon_for(events, delta=1e-5, kind="rdp"))
        model = private.release()  # type: ignore[assignment]

    # Assert
    assert epsilons == sorted(epsilons)
    assert len(set(epsilons)) == 3


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e4),
    clip=st.floats(min_value=1e-2, max_value=10.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_one_record_moves_the_clipped_gradient_by_at_most_the_clip_norm(
    scale: float, clip: float, seed: int
) -> None:
    # Arrange: a single-record batch, so the clipped sum is that record's contribution.
    model, optimizer = build(seed)
    private = make_private(
        model=model,
        optimizer=optimizer,
        data_loader=DataLoader(separable_data(seed), batch_size=BATCH),
        noise_multiplier=1.0,
        max_grad_norm=clip,
        poisson_sampling=False,
    )
    record = torch.randn(1, 4, generator=torch.Generator().manual_seed(seed)) * scale
    label = torch.tensor([seed % 2])

    # Act
    nn.CrossEntropyLoss()(private.model(record), label).backward()
    private.optimizer.clip_and_accumulate()  # type: ignore[attr-defined]
    summed = [p.summed_grad for p in model.parameters()]  # type: ignore[attr-defined]
    norm = float(torch.sqrt(sum((g**2).sum() for g in summed)))

    # Assert
    assert norm <= clip * (1 + 1e-5)


def test_huge_noise_has_the_calibrated_standard_deviation() -> None:
    # Arrange: noise std per coordinate is noise_multiplier * clip / expected batch size.
    torch.manual_seed(7)
    model, optimizer = build(hidden=256)
    private = make_private(
        model=model,
        optimizer=optimizer,
        data_loader=DataLoader(separable_data(), batch_size=BATCH),
        noise_multiplier=1e6,
        max_grad_norm=0.5,
        poisson_sampling=False,
    )
    features, labels = next(iter(private.data_loader))

    # Act
    nn.CrossEntropyLoss()(private.model(features), labels).backward()
    private.optimizer.pre_step()  # type: ignore[attr-defined]
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    # Assert (seeded; Opacus checks its noise level within 15 %)
    expected = 1e6 * 0.5 / BATCH
    assert float(grads.std()) == pytest.approx(expected, rel=0.15)


def test_batch_norm_is_refused_with_a_privacy_error() -> None:
    # Arrange
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))

    # Act
    with pytest.raises(InvalidParametersError, match="BatchNorm") as caught:
        make_private(
            model=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(separable_data(), batch_size=BATCH),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )

    # Assert: the Opacus error is the cause, not what escapes.
    assert not type(caught.value).__module__.startswith("opacus")
    assert type(caught.value.__cause__).__module__.startswith("opacus")


def test_model_still_wrapped_from_a_previous_round_is_refused() -> None:
    # Arrange
    model, optimizer = build()
    loader = DataLoader(separable_data(), batch_size=BATCH)
    make_private(
        model=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
    )

    # Act / Assert
    with pytest.raises(InvalidParametersError, match="release"):
        make_private(
            model=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )


@pytest.mark.parametrize(
    ("noise", "clip", "shown"),
    [(0.0, 1.0, "noise_multiplier"), (1.0, -1.0, "-1.0"), (float("inf"), 1.0, "inf")],
)
def test_bad_dp_parameters_are_refused(noise: float, clip: float, shown: str) -> None:
    model, optimizer = build()
    with pytest.raises(InvalidParametersError, match=shown):
        make_private(
            model=model,
            optimizer=optimizer,
            data_loader=DataLoader(separable_data(), batch_size=BATCH),
            noise_multiplier=noise,
            max_grad_norm=clip,
        )


def test_secure_rng_without_torchcsprng_is_a_privacy_error() -> None:
    # Arrange
    try:
        import torchcsprng  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torchcsprng is installed")
    model, optimizer = build()

    # Act / Assert
    with pytest.raises(PrivacyError, match="torchcsprng"):
        make_private(
            model=model,
            optimizer=optimizer,
            data_loader=DataLoader(separable_data(), batch_size=BATCH),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            secure_rng=True,
        )
