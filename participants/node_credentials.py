"""A participant's node key for Flower's SuperNode authentication.

An elliptic-curve key pair on NIST P-384 in OpenSSH format (what Flower's SuperNode and
``flwr supernode register`` read). It is made at the participant: the private key
(``NAME.key``, mode 0600 in a 0700 folder) never leaves the node; the public key
(``NAME.pub``) goes to the steward, who registers it with the SuperLink. Only registered
nodes may connect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from privacy._files import atomic_write_bytes

__all__ = ["NodeKey", "NodeKeyError", "issue_node_key", "node_key"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class NodeKeyError(Exception):
    """A node key is missing, would be overwritten, or its name is not a safe file name."""


@dataclass(frozen=True)
class NodeKey:
    """Where one participant's node key pair is."""

    private: Path
    public: Path


def _paths(folder: Path, participant: str) -> NodeKey:
    if not _NAME.fullmatch(participant):
        raise NodeKeyError(f"participant name {participant!r} is not a safe file name")
    return NodeKey(private=folder / f"{participant}.key", public=folder / f"{participant}.pub")


def node_key(folder: Path, participant: str) -> NodeKey:
    """``participant``'s key pair in ``folder``, checked present."""
    found = _paths(Path(folder), participant)
    if not found.private.is_file():
        raise NodeKeyError(
            f"no node key {found.private}: create it with `fedrisk keys node FEDERATION "
            f"--participant {participant}` and send {found.public.name} to the steward"
        )
    return found


def issue_node_key(folder: Path, participant: str, *, force: bool = False) -> NodeKey:
    """A new key pair for ``participant`` in ``folder``."""
    folder = Path(folder)
    found = _paths(folder, participant)
    if found.private.exists() and not force:
        raise NodeKeyError(
            f"{found.private} exists: pass --force to replace it (the steward must then "
            "register the new public key; the old one stays registered until removed)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    atomic_write_bytes(found.private, private, mode=0o600)
    atomic_write_bytes(found.public, public + f" fedrisk-node-{participant}\n".encode(), mode=0o644)
    return found
