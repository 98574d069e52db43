"""Two values per complex CKKS slot: layout, ciphertext count, and refusal of other layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tenseal as ts
from flwr.app import Array

from privacy.errors import InvalidUpdateError
from privacy.he import EncryptedUpdate, PublicContext, sum_encrypted
from privacy.he.packing import LAYOUT, chunk_lengths, pack, slots_for, unpack
from privacy.he.records import record_to_update, update_to_record
from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update


@pytest.mark.parametrize("length", [1, 2, 7, 4096, 8191, 8192])
def test_pack_and_unpack_are_inverse(length: int) -> None:
    values = np.random.default_rng(length).normal(size=length)

    slots = pack(values)

    assert slots.size == slots_for(length) == -(-length // 2)
    np.testing.assert_array_equal(unpack(slots, length), values)


def test_chunks_hold_two_values_per_slot() -> None:
    assert chunk_lengths(100_001, 4096) == [8192] * 12 + [100_001 - 12 * 8192]
    assert chunk_lengths(8192, 4096) == [8192]


def test_the_imaginary_parts_carry_the_second_half_of_each_chunk(
    secret_ctx: SecretContext,
) -> None:
    # TenSEAL's own decryption reads only real parts: it sees the first half of the chunk.
    values = np.arange(1, 11, dtype=np.float64) / 16
    update = encrypt_update(secret_ctx, values, check_value=None)
    vector = ts.ckks_vector_from(secret_ctx._ts, update.chunks[0])

    real_parts = np.asarray(vector.decrypt())

    assert vector.size() == 5
    np.testing.assert_allclose(real_parts, values[:5], atol=1e-6)
    total = decrypt_aggregate(secret_ctx, update, contributors=1, min_contributors=1)
    np.testing.assert_allclose(total, values, atol=1e-6)


def test_a_sum_of_packed_updates_is_exact_in_both_parts(
    secret_ctx: SecretContext, public_ctx: PublicContext
) -> None:
    rng = np.random.default_rng(3)
    vectors = [rng.normal(0.0, 0.1, 20_000) for _ in range(5)]
    updates = [encrypt_update(secret_ctx, v) for v in vectors]

    plain = decrypt_aggregate(
        secret_ctx, sum_encrypted(public_ctx, updates), contributors=5, min_contributors=5
    )

    assert len(updates[0].chunks) == 3  # 20 001 values, 8 192 per ciphertext
    assert np.max(np.abs(plain - np.sum(vectors, axis=0))) < 1e-7


def test_a_record_without_this_layout_is_refused_naming_it(secret_ctx: SecretContext) -> None:
    record = update_to_record(encrypt_update(secret_ctx, np.ones(10)))
    meta = json.loads(record["meta"].numpy().tobytes())
    for layout, expected in ((None, "one-value-per-slot"), ("float-v9", "float-v9")):
        if layout is None:
            meta.pop("layout", None)
        else:
            meta["layout"] = layout
        record["meta"] = Array(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        with pytest.raises(InvalidUpdateError, match=expected) as caught:
            record_to_update(record)
        assert LAYOUT in str(caught.value)


def test_the_old_byte_form_is_refused_with_an_upgrade_hint(secret_ctx: SecretContext) -> None:
    data = encrypt_update(secret_ctx, np.ones(10)).to_bytes()
    old = data.replace(b"fedrisk-ckks-update/2\n", b"fedrisk-ckks-update/1\n", 1)

    with pytest.raises(InvalidUpdateError, match="same fedrisk version"):
        EncryptedUpdate.from_bytes(old)
