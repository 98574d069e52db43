"""CKKSParams against the HomomorphicEncryption.org 128-bit table (../shared/REFERENCE.md)."""

from __future__ import annotations

import pytest

from privacy.errors import InvalidParametersError
from privacy.he.params import MAX_COEFF_MODULUS_BITS, CKKSParams

#: A chain summing exactly to each N's limit, with a scale that fits its data primes.
AT_LIMIT = {
    1024: ((17, 10), 10),
    2048: ((34, 20), 20),
    4096: ((60, 49), 40),
    8192: ((60, 60, 60, 38), 40),
    16384: ((60,) * 7 + (18,), 40),
    32768: ((60,) * 14 + (41,), 40),
}


def test_reference_table_is_pinned() -> None:
    assert dict(MAX_COEFF_MODULUS_BITS) == {
        1024: 27,
        2048: 54,
        4096: 109,
        8192: 218,
        16384: 438,
        32768: 881,
    }


def test_default_is_valid_and_packs_half_n_slots() -> None:
    # Act
    params = CKKSParams()

    # Assert
    assert params.poly_modulus_degree == 8192
    assert params.slots == 4096
    assert params.total_bits <= MAX_COEFF_MODULUS_BITS[8192]
    assert params.max_abs_value == 2.0**18  # one 60-bit data prime, scale 2^40


def test_textbook_chain_is_accepted() -> None:
    assert CKKSParams(8192, (60, 40, 40, 60)).total_bits == 200


def test_chain_over_the_limit_is_rejected_naming_n_bits_and_limit() -> None:
    with pytest.raises(InvalidParametersError, match=r"N=8192.*240 bits.*218 bits"):
        CKKSParams(8192, (60, 60, 60, 60))


@pytest.mark.parametrize("degree", sorted(AT_LIMIT))
def test_each_degree_accepts_its_limit_and_rejects_one_bit_more(degree: int) -> None:
    # Arrange
    chain, scale = AT_LIMIT[degree]
    over = (*chain[:-1], chain[-1] + 1)

    # Act
    params = CKKSParams(degree, chain, scale)

    # Assert
    assert params.total_bits == MAX_COEFF_MODULUS_BITS[degree]
    with pytest.raises(InvalidParametersError, match=str(MAX_COEFF_MODULUS_BITS[degree])):
        CKKSParams(degree, over, scale)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ((3000, (60, 40)), "3000"),
        ((8192, (60,)), "at least two"),
        ((8192, (61, 40)), "61"),
        ((8192, (60, 40), 59), "global_scale_bits=59"),
        ((8192, "6040"), "ints"),
    ],
)
def test_malformed_parameters_are_value_errors(args: tuple[object, ...], shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        CKKSParams(*args)  # type: ignore[arg-type]


def test_list_chain_is_normalised_to_a_tuple() -> None:
    assert CKKSParams(8192, [60, 40]) == CKKSParams()  # type: ignore[arg-type]
