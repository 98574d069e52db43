"""Encrypted updates: sums decrypt accurately, and every wrong key, wrong shape, garbage
chunk or too-small aggregate is refused with a privacy error."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import tenseal as ts

from privacy.errors import (
    ContextMismatchError,
    DecryptionError,
    InvalidParametersError,
    InvalidUpdateError,
)
from privacy.he.params import CKKSParams
from privacy.he.public import PublicContext
from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update
from privacy.he.updates import EncryptedUpdate, sum_encrypted, validate_update

LENGTH = 100_000


def test_sum_of_three_100k_vectors_decrypts_within_1e_6(
    secret_ctx: SecretContext, public_ctx: PublicContext, rng: np.random.Generator
) -> None:
    # Arrange
    vectors = [rng.uniform(-1.0, 1.0, LENGTH) for _ in range(3)]
    updates = [encrypt_update(secret_ctx, v) for v in vectors]

    # Act
    for update in updates:
        validate_update(public_ctx, update, expected_length=LENGTH)
    total = sum_encrypted(public_ctx, updates)
    plain = decrypt_aggregate(secret_ctx, total, contributors=3, min_contributors=2)

    # Assert
    assert plain.shape == (LENGTH,)
    assert np.max(np.abs(plain - np.sum(vectors, axis=0))) < 1e-6
    assert len(updates[0].chunks) == -(-(LENGTH + 1) // (2 * secret_ctx.params.slots))


def test_sum_of_ten_weighted_updates_stays_accurate(
    secret_ctx: SecretContext, public_ctx: PublicContext, rng: np.random.Generator
) -> None:
    # Arrange: FedAvg numerators n_k * s * w_k, s = 1 / the rows of the round (the default
    # chain's single data prime holds sums at the weights' magnitude).
    rows = rng.integers(1_000, 50_000, size=10)
    vectors = [rng.uniform(-5.0, 5.0, 5_000) * (n / rows.sum()) for n in rows]

    # Act
    total = sum_encrypted(public_ctx, [encrypt_update(secret_ctx, v) for v in vectors])
    plain = decrypt_aggregate(
        secret_ctx, total, contributors=10, min_contributors=3, round_decimals=None
    )

    # Assert
    assert np.max(np.abs(plain - np.sum(vectors, axis=0))) < 1e-6


def test_longer_chain_holds_unscaled_numerators(rng: np.random.Generator) -> None:
    # Arrange: n_k * w_k with large example counts need a second data prime.
    secret = SecretContext.generate(CKKSParams(coeff_mod_bit_sizes=(60, 40, 60)))
    vectors = [rng.uniform(-1.0, 1.0, 5_000) * 50_000 for _ in range(10)]

    # Act
    total = sum_encrypted(secret.public(), [encrypt_update(secret, v) for v in vectors])
    plain = decrypt_aggregate(secret, total, contributors=10, min_contributors=3)

    # Assert
    assert np.max(np.abs(plain - np.sum(vectors, axis=0))) < 1e-6


def test_default_chain_refuses_values_that_could_wrap(secret_ctx: SecretContext) -> None:
    with pytest.raises(InvalidParametersError, match="could wrap around"):
        encrypt_update(secret_ctx, np.full(10, 300.0))


@pytest.mark.parametrize("length", [1, 4095, 4096, 8191, 8192])
def test_lengths_around_chunk_boundaries_round_trip(
    secret_ctx: SecretContext, public_ctx: PublicContext, length: int
) -> None:
    # Arrange
    values = np.linspace(-1.0, 1.0, length)

    # Act
    update = encrypt_update(secret_ctx, values)
    plain = decrypt_aggregate(secret_ctx, update, contributors=1, min_contributors=1)

    # Assert
    validate_update(public_ctx, update, expected_length=length)
    np.testing.assert_allclose(plain, values, atol=1e-7)


def test_output_is_rounded_before_release(secret_ctx: SecretContext) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.full(10, 1.0 / 3.0))

    # Act
    plain = decrypt_aggregate(secret_ctx, update, contributors=1, min_contributors=1)

    # Assert
    np.testing.assert_array_equal(plain, np.round(plain, 8))
    np.testing.assert_allclose(plain, 1.0 / 3.0, atol=1e-7)


def test_fewer_contributors_than_the_minimum_are_refused(secret_ctx: SecretContext) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(8))

    # Act / Assert
    with pytest.raises(DecryptionError, match="min_contributors=2"):
        decrypt_aggregate(secret_ctx, update, contributors=1, min_contributors=2)


def test_single_update_claimed_as_an_aggregate_fails_the_check_slot(
    secret_ctx: SecretContext,
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(8))

    # Act / Assert
    with pytest.raises(DecryptionError, match="exactly 3 contributions"):
        decrypt_aggregate(secret_ctx, update, contributors=3, min_contributors=2)


def test_public_context_cannot_decrypt(
    secret_ctx: SecretContext, public_ctx: PublicContext
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(8))
    loaded = ts.ckks_vector_from(public_ctx._ts, update.chunks[0])

    # Act / Assert: neither through this package nor through TenSEAL itself.
    with pytest.raises(DecryptionError, match="only the participants' SecretContext"):
        decrypt_aggregate(public_ctx, update, contributors=1, min_contributors=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        loaded.decrypt()


def test_update_under_another_key_set_is_rejected_by_fingerprint(
    secret_ctx: SecretContext, public_ctx: PublicContext, other_secret_ctx: SecretContext
) -> None:
    # Arrange
    good = encrypt_update(secret_ctx, np.ones(16))
    foreign = encrypt_update(other_secret_ctx, np.ones(16))

    # Act / Assert
    with pytest.raises(ContextMismatchError, match="key set"):
        validate_update(public_ctx, foreign, expected_length=16)
    with pytest.raises(ContextMismatchError, match="update 1"):
        sum_encrypted(public_ctx, [good, foreign])


def test_wrong_secret_key_is_detected_even_with_a_forged_fingerprint(
    secret_ctx: SecretContext, other_secret_ctx: SecretContext
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(16))
    relabelled = dataclasses.replace(update, fingerprint=other_secret_ctx.fingerprint)

    # Act / Assert
    with pytest.raises(ContextMismatchError):
        decrypt_aggregate(other_secret_ctx, update, contributors=1, min_contributors=1)
    with pytest.raises(DecryptionError, match="wrong secret key"):
        decrypt_aggregate(other_secret_ctx, relabelled, contributors=1, min_contributors=1)


def test_length_mismatch_names_the_bad_update(
    secret_ctx: SecretContext, public_ctx: PublicContext
) -> None:
    # Arrange
    updates = [encrypt_update(secret_ctx, np.ones(16)), encrypt_update(secret_ctx, np.ones(17))]

    # Act / Assert
    with pytest.raises(InvalidUpdateError, match="update 1 has 17 values, expected 16"):
        sum_encrypted(public_ctx, updates)
    with pytest.raises(ValueError, match="expected 16"):
        validate_update(public_ctx, updates[1], expected_length=16)


@pytest.mark.parametrize("chunk", [b"", b"\x00" * 100, b"garbage bytes" * 50])
def test_garbage_chunk_is_rejected_cleanly(
    secret_ctx: SecretContext, public_ctx: PublicContext, chunk: bytes
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(16))
    garbage = dataclasses.replace(update, chunks=(chunk,))

    # Act / Assert
    with pytest.raises(InvalidUpdateError, match="chunk 0"):
        validate_update(public_ctx, garbage, expected_length=16)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (CKKSParams(4096, (60, 40)), ContextMismatchError),
        (CKKSParams(8192, (60, 40, 40, 60)), ContextMismatchError),
        (CKKSParams(8192, (60, 40, 60), 30), ContextMismatchError),
    ],
)
def test_ciphertext_under_other_parameters_is_rejected_even_if_relabelled(
    secret_ctx: SecretContext,
    public_ctx: PublicContext,
    params: CKKSParams,
    error: type[Exception],
) -> None:
    # Arrange
    other = SecretContext.generate(params)
    foreign = encrypt_update(other, np.ones(16))
    relabelled = dataclasses.replace(foreign, fingerprint=public_ctx.fingerprint)

    # Act / Assert
    with pytest.raises(error):
        validate_update(public_ctx, relabelled, expected_length=16)


@pytest.mark.parametrize(
    "values",
    [np.array([1.0, np.nan]), np.ones((2, 2)), np.array([]), np.array([2.0**60])],
)
def test_encrypt_refuses_bad_vectors(secret_ctx: SecretContext, values: np.ndarray) -> None:
    with pytest.raises(InvalidParametersError):
        encrypt_update(secret_ctx, values)


def test_coordinator_cannot_encrypt(public_ctx: PublicContext) -> None:
    with pytest.raises(InvalidParametersError, match="SecretContext"):
        encrypt_update(public_ctx, np.ones(4))  # type: ignore[arg-type]


def test_update_without_check_slot_still_sums(
    secret_ctx: SecretContext, public_ctx: PublicContext
) -> None:
    # Arrange
    updates = [encrypt_update(secret_ctx, np.full(5, 0.5), check_value=None) for _ in range(2)]

    # Act
    plain = decrypt_aggregate(
        secret_ctx, sum_encrypted(public_ctx, updates), contributors=2, min_contributors=2
    )

    # Assert
    np.testing.assert_allclose(plain, 1.0, atol=1e-7)


def test_decryptions_are_counted(secret_ctx: SecretContext) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(4))
    before = secret_ctx.decryptions

    # Act
    decrypt_aggregate(secret_ctx, update, contributors=1, min_contributors=1)

    # Assert
    assert secret_ctx.decryptions == before + 1


def test_wire_bytes_round_trip_and_truncation_is_refused(secret_ctx: SecretContext) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.arange(5000, dtype=float) / 5000)
    data = update.to_bytes()

    # Act / Assert
    assert EncryptedUpdate.from_bytes(data) == update
    with pytest.raises(InvalidUpdateError):
        EncryptedUpdate.from_bytes(data[:-10])
    with pytest.raises(InvalidUpdateError):
        EncryptedUpdate.from_bytes(b"not an update")


def test_logs_and_repr_carry_no_ciphertext(
    secret_ctx: SecretContext, public_ctx: PublicContext, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    caplog.set_level(logging.DEBUG, logger="privacy")
    update = encrypt_update(secret_ctx, np.ones(4))

    # Act
    total = sum_encrypted(public_ctx, [update, update])
    decrypt_aggregate(secret_ctx, total, contributors=2, min_contributors=2)

    # Assert
    assert "chunks" not in repr(update)
    assert caplog.records
    assert all(len(r.getMessage()) < 200 and "b'" not in r.getMessage() for r in caplog.records)
