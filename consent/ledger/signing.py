"""Signed tree heads: the ledger's Ed25519 key and what it signs (RFC 8032 via ``cryptography``).

A tree head states "the log had ``tree_size`` entries with root ``root_hash`` at
``timestamp``", signed over a domain-separated canonical encoding (:func:`head_message`), so a
third party holding only the published public key can check it. The private key lives in the
ledger's folder, readable by its owner only; it is never logged or returned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent.errors import LedgerError
from consent.keys import load_or_create_key, public_hex, public_key_from_hex

__all__ = ["LedgerSigner", "TreeHead", "head_message", "verify_head"]

_DOMAIN = b"fedrisk-ledger-tree-head/1\n"
KEY_FILE = "ledger-signing-key.pem"
PUBLIC_FILE = KEY_FILE + ".pub"


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
        key = public_key_from_hex(key_hex)
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
        self.public_key = public_hex(key)

    @classmethod
    def in_folder(cls, folder: Path) -> LedgerSigner:
        """Load the key in ``folder``, or create it (and its ``.pub`` beside it)."""
        return cls(load_or_create_key(folder / KEY_FILE))

    def sign(self, *, tree_size: int, root_hash: str, timestamp: str) -> TreeHead:
        message = head_message(tree_size=tree_size, root_hash=root_hash, timestamp=timestamp)
        return TreeHead(
            tree_size=tree_size,
            root_hash=root_hash,
            timestamp=timestamp,
            public_key=self.public_key,
            signature=self._key.sign(message).hex(),
        )
