"""Accountants against Opacus 1.6.0's published constants (../shared/REFERENCE.md).

Tolerances follow the source tests: ``assertAlmostEqual`` to 7 places is |diff| < 5e-8,
to 4 places |diff| < 5e-5. Opacus 1.6.0 gives PRV epsilon 6.777395710070868 for the
2249-step run, 2.1e-9 from the pinned 6.777395712150674, so 7 places hold.
"""

from __future__ import annotations

import json
import math

import pytest

from privacy.dp.accounting import KINDS, PrivacyAccountant, epsilon_for, noise_multiplier_for
from privacy.dp.events import DPEvent
from privacy.errors import InvalidParametersError

SEVEN_PLACES = 5e-8
FOUR_PLACES = 5e-5


def test_rdp_epsilon_matches_opacus_reference() -> None:
    # Arrange
    accountant = PrivacyAccountant(kind="rdp")
    accountant.record(DPEvent(noise_multiplier=1.5, sample_rate=0.04, steps=2250))

    # Act
    epsilon = accountant.epsilon(delta=1e-5)

    # Assert
    assert epsilon == pytest.approx(7.32911117143, abs=SEVEN_PLACES)


def test_prv_epsilon_matches_opacus_reference() -> None:
    # Arrange
    accountant = PrivacyAccountant(kind="prv")
    accountant.record(DPEvent(noise_multiplier=1.5, sample_rate=0.04, steps=2249))

    # Act
    epsilon = accountant.epsilon(delta=1e-5)

    # Assert
    assert epsilon == pytest.approx(6.777395712150674, abs=SEVEN_PLACES)


@pytest.mark.parametrize(
    ("sigma", "q", "steps", "expected"),
    [
        (1.5, 0.05, 1000, 6.20996924657727),
        (2.0, 0.05, 1000, 4.17279986668932),
        (3.0, 0.2, 100, 3.38122051022184),
        (0.8, 0.001, 100, 0.27040336405802),
    ],
)
def test_prv_epsilon_matches_microsoft_prv_accountant(
    sigma: float, q: float, steps: int, expected: float
) -> None:
    # Arrange
    event = DPEvent(noise_multiplier=sigma, sample_rate=q, steps=steps)

    # Act
    epsilon = epsilon_for([event], delta=1e-6, kind="prv")

    # Assert
    assert epsilon == pytest.approx(expected, abs=FOUR_PLACES)


def test_rdp_noise_multiplier_matches_opacus_reference() -> None:
    # Act
    sigma = noise_multiplier_for(
        target_epsilon=8.0, delta=1e-5, sample_rate=0.04, steps=int(90 / 0.04), kind="rdp"
    )

    # Assert
    assert sigma == pytest.approx(1.416, abs=FOUR_PLACES)


def test_prv_noise_multiplier_matches_opacus_reference() -> None:
    # Act
    sigma = noise_multiplier_for(
        target_epsilon=8.0, delta=1e-5, sample_rate=0.04, steps=int(90 / 0.04), kind="prv"
    )

    # Assert
    assert sigma == pytest.approx(1.34765625, abs=FOUR_PLACES)


def test_step_by_step_events_compose_like_one_event() -> None:
    # Arrange
    one_by_one = [DPEvent(noise_multiplier=1.5, sample_rate=0.04, steps=1)] * 2250

    # Act
    epsilon = epsilon_for(one_by_one, delta=1e-5, kind="rdp")

    # Assert
    assert epsilon == pytest.approx(7.32911117143, abs=SEVEN_PLACES)


def test_unreachable_target_is_a_value_error() -> None:
    # Act / Assert
    with pytest.raises(InvalidParametersError, match="epsilon=1e-09"):
        noise_multiplier_for(target_epsilon=1e-9, delta=1e-5, sample_rate=1.0, steps=10_000)


# Contract: every accountant kind behaves the same way.


@pytest.mark.parametrize("kind", KINDS)
def test_accountant_with_no_events_spent_nothing(kind: str) -> None:
    assert PrivacyAccountant(kind=kind).epsilon(delta=1e-5) == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_epsilon_grows_with_steps_and_shrinks_with_noise(kind: str) -> None:
    # Arrange
    few = DPEvent(noise_multiplier=1.0, sample_rate=0.01, steps=100)
    many = DPEvent(noise_multiplier=1.0, sample_rate=0.01, steps=400)
    noisier = DPEvent(noise_multiplier=2.0, sample_rate=0.01, steps=400)

    # Act
    eps = [epsilon_for([e], delta=1e-5, kind=kind) for e in (few, many, noisier)]

    # Assert
    assert eps[0] < eps[1]
    assert eps[2] < eps[1]
    assert all(math.isfinite(e) and e > 0 for e in eps)


@pytest.mark.parametrize("kind", KINDS)
def test_accountant_survives_json_round_trip(kind: str) -> None:
    # Arrange
    accountant = PrivacyAccountant(kind=kind)
    accountant.record(DPEvent(noise_multiplier=1.2, sample_rate=0.02, steps=50))
    accountant.record(DPEvent(noise_multiplier=1.2, sample_rate=0.02, steps=10))

    # Act
    restored = PrivacyAccountant.from_dict(json.loads(json.dumps(accountant.to_dict())))

    # Assert
    assert restored.kind == kind
    assert restored.events == accountant.events
    assert restored.epsilon(delta=1e-5) == accountant.epsilon(delta=1e-5)


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda: PrivacyAccountant(kind="gdp"), "gdp"),
        (lambda: epsilon_for([], delta=0.0), "0.0"),
        (lambda: epsilon_for([], delta=1.5), "1.5"),
        (lambda: PrivacyAccountant.from_dict({"format": "other"}), "other"),
        (
            lambda: noise_multiplier_for(target_epsilon=-1, delta=1e-5, sample_rate=0.1, steps=1),
            "-1",
        ),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_value(call: object, shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        call()  # type: ignore[operator]
