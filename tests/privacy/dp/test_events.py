"""DPEvent: a frozen, validated record of privacy spent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from privacy.dp.events import DPEvent
from privacy.errors import InvalidParametersError


def test_event_normalises_numpy_numbers() -> None:
    # Act
    event = DPEvent(
        noise_multiplier=np.float64(1.5),
        sample_rate=0.04,
        steps=np.int64(10),  # type: ignore[arg-type]
    )

    # Assert
    assert event == DPEvent(noise_multiplier=1.5, sample_rate=0.04, steps=10)
    assert type(event.steps) is int


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"noise_multiplier": 0.0, "sample_rate": 0.1, "steps": 1}, "0.0"),
        ({"noise_multiplier": float("nan"), "sample_rate": 0.1, "steps": 1}, "nan"),
        ({"noise_multiplier": 1.0, "sample_rate": 1.5, "steps": 1}, "1.5"),
        ({"noise_multiplier": 1.0, "sample_rate": 0.0, "steps": 1}, "0.0"),
        ({"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 0}, "0"),
        ({"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 2.5}, "2.5"),
        ({"noise_multiplier": True, "sample_rate": 0.1, "steps": 1}, "True"),
    ],
)
def test_invalid_event_is_refused_with_the_bad_value(kwargs: dict[str, object], shown: str) -> None:
    # Act / Assert
    with pytest.raises(InvalidParametersError, match=shown):
        DPEvent(**kwargs)  # type: ignore[arg-type]


def test_event_is_frozen_and_round_trips() -> None:
    # Arrange
    event = DPEvent(noise_multiplier=1.1, sample_rate=0.01, steps=100)

    # Act
    copy = DPEvent.from_dict(event.to_dict())

    # Assert
    assert copy == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.steps = 5  # type: ignore[misc]
