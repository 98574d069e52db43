"""Signed consent assertions: each refusal reason, paired with the case that passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent.assertions import AssertionRefusedError, AssertionSigner, AssertionVerifier

NOW = 1_790_000_000.0
CATEGORIES = ("gov.agri", "gov.registry")


def _signer(tmp_path: Path, name: str = "coordinator") -> AssertionSigner:
    return AssertionSigner.in_folder(tmp_path / name)


def _token(signer: AssertionSigner, **overrides: object) -> str:
    claims: dict[str, object] = {
        "grants": {"F100000001": "g-1", "F100000002": "g-2"},
        "purpose": "credit_scoring",
        "categories": CATEGORIES,
        "model": "demo-farmer-credit",
        "audience": "gov",
        "ttl_s": 30,
        "now": NOW,
    }
    claims.update(overrides)
    grants = claims.pop("grants")
    return signer.issue(grants, **claims)  # type: ignore[arg-type]


def _verify(verifier: AssertionVerifier, token: str, **overrides: object) -> object:
    query: dict[str, object] = {
        "subject_ids": ["F100000001"],
        "purpose": "credit_scoring",
        "categories": CATEGORIES,
        "model": "demo-farmer-credit",
        "now": NOW + 5,
    }
    query.update(overrides)
    return verifier.verify(token, **query)  # type: ignore[arg-type]


def test_a_fresh_assertion_for_this_party_is_accepted_once(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    verifier = AssertionVerifier(signer.public_key, audience="gov")
    token = _token(signer)

    asserted = _verify(verifier, token)

    assert asserted.grants["F100000001"] == "g-1"  # type: ignore[attr-defined]
    with pytest.raises(AssertionRefusedError) as refused:
        _verify(verifier, token)
    assert refused.value.reason == "replayed"


@pytest.mark.parametrize(
    ("token_overrides", "query_overrides", "reason"),
    [
        ({}, {"now": NOW + 33}, "expired"),
        ({"audience": "bank"}, {}, "wrong_audience"),
        ({"purpose": "marketing"}, {}, "wrong_purpose"),
        ({"model": "demo-sme-risk"}, {}, "wrong_purpose"),
        ({"categories": ("gov.agri",)}, {}, "categories_not_covered"),
        ({}, {"subject_ids": ["F100000001", "F100000009"]}, "subject_not_covered"),
    ],
)
def test_each_mismatch_is_refused_with_its_reason(
    tmp_path: Path,
    token_overrides: dict[str, object],
    query_overrides: dict[str, object],
    reason: str,
) -> None:
    signer = _signer(tmp_path)
    verifier = AssertionVerifier(signer.public_key, audience="gov")

    with pytest.raises(AssertionRefusedError) as refused:
        _verify(verifier, _token(signer, **token_overrides), **query_overrides)

    assert refused.value.reason == reason


def test_a_token_signed_by_another_key_or_altered_is_refused(tmp_path: Path) -> None:
    ours, theirs = _signer(tmp_path), _signer(tmp_path, "impostor")
    verifier = AssertionVerifier(ours.public_key, audience="gov")
    header, payload, signature = _token(ours).split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    for token, reason in (
        (_token(theirs), "bad_signature"),
        (f"{header}.{flipped}.{signature}", "bad_signature"),
        ("not-a-jwt", "malformed"),
    ):
        with pytest.raises(AssertionRefusedError) as refused:
            _verify(verifier, token)
        assert refused.value.reason in (reason, "malformed")


def test_the_key_file_is_private_and_reused(tmp_path: Path) -> None:
    first = _signer(tmp_path)
    assert _signer(tmp_path).public_key == first.public_key
    key = tmp_path / "coordinator" / "assertion-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "coordinator" / "assertion-signing-key.pem.pub").read_text().strip() == (
        first.public_key
    )


def test_processes_starting_together_end_up_with_one_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from consent.assertions import AssertionSigner;"
        "print(AssertionSigner.in_folder(Path(sys.argv[1])).public_key)"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "k")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    keys = {run.communicate(timeout=60)[0].decode().strip() for run in runs}

    assert all(run.returncode == 0 for run in runs)
    assert len(keys) == 1 and keys == {_signer(tmp_path, "k").public_key}
