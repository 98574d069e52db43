"""The public side's seam: what validating and summing need from a key set (CKKSContext)."""

from __future__ import annotations

import numpy as np
import pytest

import privacy.he
from privacy.errors import InvalidParametersError, InvalidUpdateError, PrivacyError
from privacy.he.public import CKKSContext, PublicContext
from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update
from privacy.he.updates import sum_encrypted, validate_update


@pytest.fixture(params=["public", "secret"])
def any_ctx(
    request: pytest.FixtureRequest, public_ctx: PublicContext, secret_ctx: SecretContext
) -> CKKSContext:
    return public_ctx if request.param == "public" else secret_ctx


def test_both_context_types_validate_and_sum(
    any_ctx: CKKSContext, secret_ctx: SecretContext
) -> None:
    # Arrange
    updates = [encrypt_update(secret_ctx, np.full(6, 0.25)) for _ in range(2)]

    # Act
    for update in updates:
        validate_update(any_ctx, update, expected_length=6)
    total = sum_encrypted(any_ctx, updates)

    # Assert
    assert isinstance(any_ctx, CKKSContext)
    assert total.fingerprint == secret_ctx.fingerprint
    plain = decrypt_aggregate(secret_ctx, total, contributors=2, min_contributors=2)
    np.testing.assert_allclose(plain, 0.5, atol=1e-7)


def test_an_object_without_the_protocol_is_refused(secret_ctx: SecretContext) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(4))

    # Act / Assert
    assert not isinstance(object(), CKKSContext)
    with pytest.raises(InvalidParametersError, match="expected a CKKS context"):
        validate_update(object(), update, expected_length=4)  # type: ignore[arg-type]
    with pytest.raises(InvalidParametersError, match="expected a CKKS context"):
        sum_encrypted(object(), [update])  # type: ignore[arg-type]


def test_loading_garbage_raises_a_privacy_error_not_tenseals(any_ctx: CKKSContext) -> None:
    with pytest.raises(InvalidUpdateError, match="not a CKKS ciphertext") as caught:
        any_ctx.load_ciphertext(b"garbage")
    assert isinstance(caught.value, PrivacyError)


def test_the_public_package_exports_no_secret_name() -> None:
    secret_names = {
        "SecretContext",
        "KeyProvision",
        "decrypt_aggregate",
        "encrypt_update",
        "provision_keys",
    }
    assert secret_names.isdisjoint(privacy.he.__all__)
    assert secret_names.isdisjoint(vars(privacy.he))


def test_ciphertexts_handed_out_by_either_context_cannot_decrypt(
    any_ctx: CKKSContext, secret_ctx: SecretContext
) -> None:
    # Arrange
    update = encrypt_update(secret_ctx, np.ones(4))

    # Act
    loaded = any_ctx.load_ciphertext(update.chunks[0])
    total = sum_encrypted(any_ctx, [update, update])

    # Assert: raw decryption fails; decrypt_aggregate (rounding, minimum, count) still works.
    with pytest.raises(ValueError, match="secret"):
        loaded.decrypt()
    with pytest.raises(ValueError, match="secret"):
        any_ctx.load_ciphertext(total.chunks[0]).decrypt()
    plain = decrypt_aggregate(secret_ctx, total, contributors=2, min_contributors=2)
    np.testing.assert_allclose(plain, 2.0, atol=1e-7)
