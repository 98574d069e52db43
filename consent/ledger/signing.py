"""Signed tree heads: the ledger's Ed25519 key and what it signs (RFC 8032 via ``cryptography``).

A tree head states "the log had ``tree_size`` entries with root ``root_hash`` at
``timestamp``", signed over a domain-separated canonical encoding (:func:`head_message`), so a
third party holding only the published public key can check it. The private key lives in the
ledger's folder, readable by its owner only; it is never logged or returned.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.errors import LedgerError

__all__ = ["LedgerSigner", "TreeHead", "head_message", "verify_head"]

_DOMAIN = b"fedrisk-ledger-tree-head/1\n"
KEY_FILE = "ledger-signing-key.pem"
PUBLIC_FILE = "ledger-signing-key.pub"


@dataclass(frozen=True)
class TreeHead:
    """A signed statement of the log's size and root (hashes and keys as lowercase hex)."""

    tree_size: int
    root_hash: str
    timestamp: str
    public_key: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeHead:
        try:
            return cls(
                tree_size=int(data["tree_size"]),
                root_hash=str(data["root_hash"]),
                timestamp=str(data["timestamp"]),
                public_key=str(data["public_key"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"malformed tree head: {exc}") from exc


def head_message(*, tree_size: int, root_hash: str, timestamp: str) -> bytes:
    """The exact bytes a tree head's signature covers."""
    body = {"root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size}
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def verify_head(head: TreeHead, *, public_key: str | None = None) -> bool:
    """Whether ``head`` carries a valid signature, by ``public_key`` if given (hex; pass the
    ledger's *published* key: a head's own key field proves nothing about who signed it)."""
    key_hex = public_key if public_key is not None else head.public_key
    if public_key is not None and public_key.lower() != head.public_key.lower():
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
        message = head_message(
            tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp
        )
        key.verify(bytes.fromhex(head.signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class LedgerSigner:
    """The ledger's signing key, kept in ``folder`` (created with mode 0600 on first use)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = raw.hex()

    @classmethod
    def in_folder(cls, folder: Path) -> LedgerSigner:
        """Load the key in ``folder``, or create it (and its ``.pub`` beside it)."""
        path = folder / KEY_FILE
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except ValueError as exc:
                raise LedgerError(f"{path} is not a PEM private key: {exc}") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise LedgerError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
            return cls(key)
        folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        signer = cls(key)
        (folder / PUBLIC_FILE).write_text(signer.public_key + "\n", encoding="ascii")
        return signer

    def sign(self, *, tree_size: int, root_hash: str, timestamp: str) -> TreeHead:
        message = head_message(tree_size=tree_size, root_hash=root_hash, timestamp=timestamp)
        return TreeHead(
            tree_size=tree_size,
            root_hash=root_hash,
            timestamp=timestamp,
            public_key=self.public_key,
            signature=self._key.sign(message).hex(),
        )
