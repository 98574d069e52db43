"""A participant's node key: OpenSSH P-384 key pair, file modes, refusal to overwrite,
safe names, and that the pair actually signs and verifies."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)

from participants.node_credentials import NodeKey, NodeKeyError, issue_node_key, node_key

ECDSA = ec.ECDSA(hashes.SHA384())


def private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = load_ssh_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def public_key(path: Path) -> ec.EllipticCurvePublicKey:
    key = load_ssh_public_key(path.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_issue_writes_a_private_p384_openssh_pair(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    found = issue_node_key(folder, "bank")
    assert found == NodeKey(private=folder / "bank.key", public=folder / "bank.pub")
    assert mode(folder) == 0o700
    assert mode(found.private) == 0o600
    assert found.public.is_file()
    assert not list(folder.glob(".*.tmp"))

    key = private_key(found.private)
    assert isinstance(key.curve, ec.SECP384R1)
    public = public_key(found.public)
    assert public.public_numbers() == key.public_key().public_numbers()
    assert found.public.read_text().startswith("ecdsa-sha2-nistp384 ")
    assert found.public.read_text().rstrip().endswith("fedrisk-node-bank")


def test_issue_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    found = issue_node_key(tmp_path, "bank")
    before = found.private.read_bytes(), found.public.read_bytes()
    with pytest.raises(NodeKeyError, match="--force"):
        issue_node_key(tmp_path, "bank")
    assert (found.private.read_bytes(), found.public.read_bytes()) == before


def test_issue_with_force_makes_a_new_pair(tmp_path: Path) -> None:
    found = issue_node_key(tmp_path, "bank")
    old = private_key(found.private).public_key().public_numbers()
    issue_node_key(tmp_path, "bank", force=True)
    new = private_key(found.private)
    assert new.public_key().public_numbers() != old
    assert public_key(found.public).public_numbers() == new.public_key().public_numbers()
    assert mode(found.private) == 0o600


def test_node_key_finds_an_issued_key(tmp_path: Path) -> None:
    issued = issue_node_key(tmp_path, "bank")
    assert node_key(tmp_path, "bank") == issued


def test_node_key_for_a_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    issue_node_key(tmp_path, "bank")
    with pytest.raises(NodeKeyError) as missing:
        node_key(tmp_path, "gov")
    message = str(missing.value)
    assert "fedrisk keys node" in message
    assert "gov" in message
    assert "gov.pub" in message


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "-x", "a b", "x" * 129])
def test_unsafe_participant_names_are_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "keys"
    with pytest.raises(NodeKeyError, match="not a safe file name"):
        issue_node_key(folder, name)
    with pytest.raises(NodeKeyError, match="not a safe file name"):
        node_key(folder, name)
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["bank", "Bank_2", "gov.uk", "a-b", "x" * 128])
def test_safe_participant_names_are_accepted(tmp_path: Path, name: str) -> None:
    found = issue_node_key(tmp_path, name)
    assert found.private == tmp_path / f"{name}.key"
    assert node_key(tmp_path, name) == found


def test_signature_verifies_only_with_the_signers_public_key(tmp_path: Path) -> None:
    bank = issue_node_key(tmp_path, "bank")
    gov = issue_node_key(tmp_path, "gov")
    message = b"round 3 update from bank"
    signature = private_key(bank.private).sign(message, ECDSA)
    public_key(bank.public).verify(signature, message, ECDSA)
    with pytest.raises(InvalidSignature):
        public_key(gov.public).verify(signature, message, ECDSA)
    with pytest.raises(InvalidSignature):
        public_key(bank.public).verify(signature, b"round 3 update from gov", ECDSA)
