"""Ed25519 key files (RFC 8032, via ``cryptography``): created once, owner-readable only."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.errors import ConsentError

__all__ = ["load_or_create_key", "public_hex", "public_key_from_hex", "write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Create a secret file (mode 0600) holding ``data`` unless it exists; never replace one.

    Safe when several processes start at once (a node and the API, say): the file appears
    whole, via a private temporary file hard-linked into place, and the first writer wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: keep theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (PKCS#8 PEM); generated there on first use, with
    its public key as hex in ``path`` + ``.pub``."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, pem)  # keeps a key another process wrote first
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ConsentError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConsentError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    public = path.with_name(path.name + ".pub")
    if not public.exists():
        public.write_text(public_hex(key) + "\n", encoding="ascii")
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
