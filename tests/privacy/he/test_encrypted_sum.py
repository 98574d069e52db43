"""The coordinator's running sum: each update checked once, bad ones leave the total intact."""

from __future__ import annotations

import numpy as np
import pytest

from privacy.errors import ContextMismatchError, InvalidParametersError, InvalidUpdateError
from privacy.he.public import PublicContext
from privacy.he.records import record_to_update, update_to_record
from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update
from privacy.he.updates import EncryptedSum, EncryptedUpdate


def test_running_sum_equals_plain_sum_and_skips_bad_updates(
    secret_ctx: SecretContext,
    public_ctx: PublicContext,
    other_secret_ctx: SecretContext,
    rng: np.random.Generator,
) -> None:
    values = [rng.normal(size=10_000) for _ in range(3)]
    running = EncryptedSum(public_ctx, expected_length=10_000)

    running.add(encrypt_update(secret_ctx, values[0]))
    with pytest.raises(ContextMismatchError):
        running.add(encrypt_update(other_secret_ctx, values[1]))
    with pytest.raises(InvalidUpdateError):
        running.add(encrypt_update(secret_ctx, values[1][:9_000]))
    good = encrypt_update(secret_ctx, values[1])
    with pytest.raises((InvalidUpdateError, ContextMismatchError)):
        running.add(
            EncryptedUpdate(
                chunks=(b"garbage", *good.chunks[1:]),
                length=good.length,
                fingerprint=good.fingerprint,
                check_value=good.check_value,
            )
        )
    running.add(good)
    running.add(encrypt_update(secret_ctx, values[2]))

    total = decrypt_aggregate(secret_ctx, running.result(), contributors=3, min_contributors=2)
    assert running.count == 3
    np.testing.assert_allclose(total, sum(values), atol=1e-6)


def test_empty_sum_has_no_result(public_ctx: PublicContext) -> None:
    with pytest.raises(InvalidParametersError):
        EncryptedSum(public_ctx, expected_length=3).result()


def test_record_round_trip_and_tampered_metadata(secret_ctx: SecretContext) -> None:
    update = encrypt_update(secret_ctx, np.linspace(-1.0, 1.0, 10_000))
    record = update_to_record(update)

    assert record_to_update(record) == update
    del record["chunk-0001"]
    with pytest.raises(InvalidUpdateError):
        record_to_update(record)
