"""Encrypted updates as Flower ConfigRecords."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord

from privacy.errors import InvalidUpdateError
from privacy.he.records import record_to_update, update_to_record
from privacy.he.secret import SecretContext, encrypt_update


@pytest.mark.parametrize("check_value", [1.0, None])
def test_update_round_trips_through_a_config_record(
    secret_ctx: SecretContext, check_value: float | None
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(5000), check_value=check_value)

    # Act
    restored = record_to_update(update_to_record(update))

    # Assert
    assert restored == update


@pytest.mark.parametrize(
    "record",
    [
        ConfigRecord({"length": 3, "fingerprint": "0" * 64}),
        ConfigRecord({"chunks": [b"x"], "length": "3", "fingerprint": "0" * 64}),
        ConfigRecord({"chunks": [b"x"], "length": 3, "fingerprint": "short"}),
        ConfigRecord({"chunks": ["text"], "length": 3, "fingerprint": "0" * 64}),
    ],
)
def test_malformed_record_is_an_invalid_update(record: ConfigRecord) -> None:
    with pytest.raises(InvalidUpdateError):
        record_to_update(record)
