"""Unified social credit codes (统一社会信用代码, GB 32100-2015) for the demo's firms.

An 18-character code: registration authority (1), entity type (1), administrative division
(6 digits, GB/T 2260), the organisation code (9 characters, GB 11714: an 8-character body and
its own check character) and a final check character over the first 17. The alphabet is the
digits and the capital letters without I, O, S, V and Z (31 characters); the final check
character uses weights 3^i mod 31 and is ``31 - (sum mod 31)`` (31 maps to ``0``); the
organisation-code check uses weights 3, 7, 9, 10, 5, 8, 4, 2 modulo 11 (10 maps to ``X``,
11 to ``0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from participants.demo.errors import InvalidUSCCError

__all__ = [
    "USCC_ALPHABET",
    "is_valid_uscc",
    "make_uscc",
    "organization_code_check_character",
    "random_usccs",
    "uscc_check_character",
    "validate_uscc",
]

USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE: Final = {char: value for value, char in enumerate(USCC_ALPHABET)}
_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def uscc_check_character(first17: str) -> str:
    """The 18th (check) character of a code whose first 17 characters are given."""
    if len(first17) != 17 or any(c not in _VALUE for c in first17):
        raise InvalidUSCCError(
            f"need 17 characters from {USCC_ALPHABET!r}, got {first17!r} ({len(first17)})"
        )
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def organization_code_check_character(body: str) -> str:
    """The check character of an 8-character organisation-code body (GB 11714)."""
    if len(body) != 8 or any(c not in _ORG_ALPHABET for c in body):
        raise InvalidUSCCError(f"need an 8-character organisation-code body, got {body!r}")
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def validate_uscc(code: str, *, check_organization_code: bool = True) -> str:
    """Return ``code`` if it is a well-formed unified social credit code, else raise.

    Checks the length, the alphabet, the 6-digit division code, the final check character and
    (unless ``check_organization_code`` is false) the embedded organisation-code check.
    """
    if not isinstance(code, str) or len(code) != 18:
        raise InvalidUSCCError(f"a USCC has 18 characters, got {code!r}")
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        raise InvalidUSCCError(f"characters {bad!r} are not in the USCC alphabet: {code!r}")
    if not code[2:8].isdigit():
        raise InvalidUSCCError(f"characters 3-8 must be a division code of digits: {code!r}")
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise InvalidUSCCError(f"check character of {code!r} should be {expected!r}")
    if check_organization_code:
        org_expected = organization_code_check_character(code[8:16])
        if code[16] != org_expected:
            raise InvalidUSCCError(
                f"organisation-code check character of {code!r} should be {org_expected!r}"
            )
    return code


def is_valid_uscc(code: str, *, check_organization_code: bool = True) -> bool:
    """Whether ``code`` passes :func:`validate_uscc`."""
    try:
        validate_uscc(code, check_organization_code=check_organization_code)
    except InvalidUSCCError:
        return False
    return True


def make_uscc(
    *,
    division_code: str,
    organization_body: str,
    registration_authority: str = "9",
    entity_type: str = "1",
) -> str:
    """Assemble a valid code from its parts, computing both check characters.

    The defaults ``9`` / ``1`` are a company registered with market regulation.
    """
    if len(division_code) != 6 or not division_code.isdigit():
        raise InvalidUSCCError(f"division_code must be 6 digits, got {division_code!r}")
    prefix = registration_authority + entity_type + division_code + organization_body
    org_check = organization_code_check_character(organization_body)
    first17 = prefix + org_check
    return first17 + uscc_check_character(first17)


_BODY_ALPHABET: Final = np.array(list(USCC_ALPHABET))
_DIGITS: Final = np.array(list("0123456789"))


def random_usccs(
    rng: np.random.Generator,
    count: int,
    *,
    division_codes: Sequence[str],
    entity_type: str = "1",
    exclude: frozenset[str] = frozenset(),
) -> list[str]:
    """``count`` distinct, valid, random-looking company codes in the given divisions.

    About two thirds use the post-2015 ``MA`` organisation-code prefix, the rest an older
    all-digit body, as real registries show. Deterministic for a seeded ``rng``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not division_codes:
        raise ValueError("division_codes must not be empty")
    codes: list[str] = []
    seen = set(exclude)
    while len(codes) < count:
        division = division_codes[int(rng.integers(len(division_codes)))]
        if rng.random() < 2 / 3:
            body = "MA" + "".join(rng.choice(_BODY_ALPHABET, size=6))
        else:
            body = "".join(rng.choice(_DIGITS, size=8))
        code = make_uscc(division_code=division, organization_body=body, entity_type=entity_type)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes
