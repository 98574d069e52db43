"""Ed25519 key files (RFC 8032, via ``cryptography``): created once, owner-readable only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.errors import ConsentError

__all__ = ["load_or_create_key", "public_hex", "public_key_from_hex", "write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file with mode 0600; refuse to replace an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (PKCS#8 PEM); generated there on first use, with
    its public key as hex in ``path`` + ``.pub``."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConsentError(f"{path} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConsentError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
    path.with_name(path.name + ".pub").write_text(public_hex(key) + "\n", encoding="ascii")
    return key


def public_hex(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key, as lowercase hex (how fedrisk publishes keys)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def public_key_from_hex(value: str) -> Ed25519PublicKey:
    """An Ed25519 public key from 64 hex digits; :class:`ValueError` otherwise."""
    data = bytes.fromhex(value.strip())
    if len(data) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(data)}")
    return Ed25519PublicKey.from_public_bytes(data)
