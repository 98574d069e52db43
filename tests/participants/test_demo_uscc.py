"""Unified social credit codes (GB 32100-2015): check characters and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from participants.demo import (
    USCC_ALPHABET,
    InvalidUSCCError,
    is_valid_uscc,
    make_uscc,
    random_usccs,
    uscc_check_character,
    validate_uscc,
)
from participants.demo.uscc import organization_code_check_character

PUBLISHED = "91350100M000100Y43"
"""The worked example printed with the standard (a Fuzhou company)."""


def test_published_example_is_valid() -> None:
    assert uscc_check_character(PUBLISHED[:17]) == "3"
    assert organization_code_check_character(PUBLISHED[8:16]) == "4"
    assert validate_uscc(PUBLISHED) == PUBLISHED


@pytest.mark.parametrize("position", range(18))
def test_any_single_substitution_is_detected(position: int) -> None:
    for replacement in USCC_ALPHABET:
        if replacement == PUBLISHED[position]:
            continue
        corrupted = PUBLISHED[:position] + replacement + PUBLISHED[position + 1 :]

        assert not is_valid_uscc(corrupted), corrupted


@pytest.mark.parametrize(
    "code",
    [
        "",
        PUBLISHED[:17],
        PUBLISHED + "0",
        PUBLISHED.lower(),
        "91350100I000100Y43",  # I is not in the alphabet
        "9135A100M000100Y43",  # division code must be digits
    ],
)
def test_malformed_codes_are_rejected(code: str) -> None:
    with pytest.raises(InvalidUSCCError):
        validate_uscc(code)
    with pytest.raises(ValueError):  # argument errors are also ValueErrors
        validate_uscc(code)


def test_organisation_code_check_can_be_skipped() -> None:
    first17 = "91350100M000100Y5"  # wrong organisation-code check character
    code = first17 + uscc_check_character(first17)

    assert not is_valid_uscc(code)
    assert is_valid_uscc(code, check_organization_code=False)


def test_random_codes_are_valid_distinct_and_seeded() -> None:
    codes = random_usccs(np.random.default_rng(1), 500, division_codes=("320500", "441900"))
    again = random_usccs(np.random.default_rng(1), 500, division_codes=("320500", "441900"))

    assert codes == again
    assert len(set(codes)) == 500
    assert all(is_valid_uscc(c) for c in codes)
    assert {c[2:8] for c in codes} == {"320500", "441900"}


@given(
    body=st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8),
    division=st.integers(110000, 659999).map(str),
)
def test_assembled_codes_always_validate(body: str, division: str) -> None:
    assert is_valid_uscc(make_uscc(division_code=division, organization_body=body))
