"""Secret and public CKKS contexts: fingerprints, explicit secret serialization, files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from privacy.errors import InvalidParametersError, PrivacyError
from privacy.he.params import CKKSParams
from privacy.he.public import PublicContext
from privacy.he.secret import SecretContext, provision_keys


def test_secret_and_public_context_share_one_fingerprint(
    secret_ctx: SecretContext, public_ctx: PublicContext, other_secret_ctx: SecretContext
) -> None:
    assert secret_ctx.fingerprint == public_ctx.fingerprint
    assert len(secret_ctx.fingerprint) == 64
    assert other_secret_ctx.fingerprint != secret_ctx.fingerprint
    assert public_ctx.params == secret_ctx.params == CKKSParams()


def test_public_context_has_no_secret_key_and_no_decrypt(public_ctx: PublicContext) -> None:
    assert public_ctx._ts.is_public()
    assert not any("decrypt" in name for name in dir(PublicContext))


def test_serializing_the_secret_needs_the_explicit_flag(secret_ctx: SecretContext) -> None:
    # Act / Assert
    with pytest.raises(PrivacyError, match="include_secret_key=True"):
        secret_ctx.serialize(include_secret_key=False)
    with pytest.raises(TypeError):
        secret_ctx.serialize()  # type: ignore[call-arg]
    restored = SecretContext.from_bytes(secret_ctx.serialize(include_secret_key=True))
    assert restored.fingerprint == secret_ctx.fingerprint


def test_secret_file_round_trips_with_owner_only_mode(
    secret_ctx: SecretContext, tmp_path: Path
) -> None:
    # Arrange
    path = tmp_path / "secret.ckks"

    # Act
    secret_ctx.save(path, include_secret_key=True)
    loaded = SecretContext.load(path)

    # Assert
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded.fingerprint == secret_ctx.fingerprint


def test_public_context_load_refuses_a_secret_key_file(
    secret_ctx: SecretContext, tmp_path: Path
) -> None:
    # Arrange
    path = tmp_path / "secret.ckks"
    secret_ctx.save(path, include_secret_key=True)

    # Act / Assert
    with pytest.raises(PrivacyError, match="coordinator may only"):
        PublicContext.load(path)


def test_secret_key_behind_a_public_header_is_refused(secret_ctx: SecretContext) -> None:
    # Arrange: relabel a secret envelope as public.
    forged = secret_ctx.serialize(include_secret_key=True).replace(b"secret\n", b"public\n", 1)

    # Act / Assert
    with pytest.raises(PrivacyError, match="holds a secret key"):
        PublicContext.from_bytes(forged)


def test_public_file_round_trips_and_is_not_a_secret(
    public_ctx: PublicContext, tmp_path: Path
) -> None:
    # Arrange
    path = tmp_path / "public.ckks"
    public_ctx.save(path)

    # Act
    loaded = PublicContext.load(path)

    # Assert
    assert loaded.fingerprint == public_ctx.fingerprint
    with pytest.raises(PrivacyError, match="no secret key"):
        SecretContext.load(path)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"fedrisk-ckks/1\npublic\n" + b"\x00" * 64, b"fedrisk-ckks/1\nother\n"],
)
def test_corrupt_context_data_is_a_privacy_error(data: bytes) -> None:
    with pytest.raises(PrivacyError):
        PublicContext.from_bytes(data)


def test_missing_key_file_is_a_privacy_error(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="cannot read"):
        SecretContext.load(tmp_path / "absent.ckks")


def test_provisioning_shares_one_secret_and_gives_the_coordinator_the_public_part(
    tmp_path: Path,
) -> None:
    # Act
    provision = provision_keys(
        out_dir=tmp_path, participants=["bank", "gov-platform"], params=CKKSParams()
    )

    # Assert
    assert set(provision.secret_paths) == {"bank", "gov-platform"}
    for name, path in provision.secret_paths.items():
        assert path == tmp_path / name / "secret.ckks"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert SecretContext.load(path).fingerprint == provision.fingerprint
    assert provision.public_path == tmp_path / "coordinator" / "public.ckks"
    assert PublicContext.load(provision.public_path).fingerprint == provision.fingerprint


@pytest.mark.parametrize("names", [[], ["bank", "bank"], ["../escape"], ["coordinator"], "bank"])
def test_provisioning_refuses_unsafe_participant_lists(tmp_path: Path, names: object) -> None:
    with pytest.raises(InvalidParametersError):
        provision_keys(out_dir=tmp_path, participants=names, params=CKKSParams())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_tenseal_rejection_is_translated() -> None:
    # (14, 13) fits N=1024's 27 bits, but no 13-bit prime is 1 mod 2048.
    with pytest.raises(InvalidParametersError, match="TenSEAL rejected"):
        SecretContext.generate(CKKSParams(1024, (14, 13), 10))
