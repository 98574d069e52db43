"""The Secret objects the manifests use, built from the files ``fedrisk keys`` writes.

File layout (``coordinator/link_credentials.py``, ``participants/node_credentials.py``)::

    DEPLOYMENT/ca.crt, superlink.crt, superlink.key   fedrisk keys tls (or keys deployment)
    DEPLOYMENT/nodes/NAME.pub                         the steward's allow-list
    NODE_KEYS/NAME.key, NAME.pub                      fedrisk keys node (or keys deployment)

where DEPLOYMENT is ``<federation output>/deployment`` and NODE_KEYS is
``$FEDRISK_HOME/node-keys/FEDERATION`` unless given. The CA's private key (``ca.key``)
never goes into a Secret. The consent store's password is generated (a CSPRNG) and its
Secret is created once and then kept.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from .errors import K8sError, ManifestError, MissingKeyFileError
from .secret_refs import SecretRef

__all__ = [
    "BuiltSecret",
    "KeyFolders",
    "TLS_FILES",
    "build_secrets",
    "read_env_file",
    "redacted",
]

#: What the SuperLink mounts from ``fedrisk-link-tls`` (never ``ca.key``).
TLS_FILES = ("ca.crt", "superlink.crt", "superlink.key")
POSTGRES_USER = "fedrisk"
LABELS = {
    "app.kubernetes.io/part-of": "fedrisk",
    "app.kubernetes.io/managed-by": "fedrisk-launcher",
}
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class KeyFolders:
    """Where the steward's key files are, and the federation they were made for."""

    federation: Path
    deployment: Path
    node_keys: Path
    #: The federation's participants: the allow-list holds one key per participant.
    participants: tuple[str, ...]


@dataclass(frozen=True)
class BuiltSecret:
    """A Secret manifest; ``replace`` False when an existing one must be kept."""

    manifest: dict[str, Any]
    replace: bool = True

    @property
    def name(self) -> str:
        meta = self.manifest["metadata"]
        return f"{meta['namespace']}/{meta['name']}"


def _secret(ref: SecretRef, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ref.name, "namespace": ref.namespace, "labels": dict(LABELS)},
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode("ascii") for key, value in data.items()},
    }


def _read(path: Path, how: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MissingKeyFileError(f"no {path}: {how}") from None
    except OSError as exc:
        raise MissingKeyFileError(f"cannot read {path}: {exc.strerror}") from exc


def _hosts(names: Sequence[str]) -> str:
    return " ".join(f"--host {name}" for name in names)


def _link_tls(folders: KeyFolders, superlink_names: Sequence[str]) -> dict[str, bytes]:
    how = (
        f"create the SuperLink's TLS with `fedrisk keys tls {folders.federation} "
        f"--out {folders.deployment} {_hosts(superlink_names)}`"
    )
    data = {name: _read(folders.deployment / name, how) for name in TLS_FILES}
    cert_path = folders.deployment / "superlink.crt"
    try:
        cert = x509.load_pem_x509_certificate(data["superlink.crt"])
        named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = set(named.value.get_values_for_type(x509.DNSName))
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise K8sError(f"{cert_path} is not a SuperLink certificate: {exc}") from exc
    missing = [name for name in superlink_names if name not in dns]
    if missing:
        raise K8sError(
            f"{cert_path} does not name {', '.join(missing)}, the address SuperNodes and "
            f"round Jobs dial: re-issue it with `fedrisk keys tls {folders.federation} "
            f"--out {folders.deployment} --force {_hosts(superlink_names)}` (participants "
            "then need the new ca.crt)"
        )
    return data


def _allowlist(folders: KeyFolders) -> dict[str, bytes]:
    data = {}
    for name in folders.participants:
        how = (
            f"the SuperLink allows participant {name}'s node by its public key: "
            f"`fedrisk keys deployment {folders.federation}` makes every key on one machine; "
            f"else copy the {name}.pub that `fedrisk keys node {folders.federation} "
            f"--participant {name}` made there"
        )
        data[f"{name}.pub"] = _read(folders.deployment / "nodes" / f"{name}.pub", how)
    return data


def _node_key(ref: SecretRef, folders: KeyFolders) -> dict[str, bytes]:
    if len(ref.participants) != 1:
        raise ManifestError(
            f"Secret {ref.namespace}/{ref.name} is used by {', '.join(ref.users)}, which name "
            f"participants {sorted(ref.participants)}: expected exactly one --participant"
        )
    (name,) = ref.participants
    if name not in folders.participants:
        raise K8sError(
            f"the overlay runs participant {name} (namespace {ref.namespace}), which "
            f"{folders.federation} does not name (it names {', '.join(folders.participants)})"
        )
    how = f"create it with `fedrisk keys node {folders.federation} --participant {name}`"
    return {
        f"{name}.key": _read(folders.node_keys / f"{name}.key", how),
        f"{name}.pub": _read(folders.node_keys / f"{name}.pub", how),
        "ca.crt": _read(
            folders.deployment / "ca.crt",
            f"create the federation's CA with `fedrisk keys tls {folders.federation}`",
        ),
    }


def read_env_file(path: Path) -> dict[str, bytes]:
    """``KEY=VALUE`` lines (no quoting; ``#`` comments and blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MissingKeyFileError(f"cannot read {path}: {exc.strerror}") from exc
    found = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY.fullmatch(key.strip()):
            raise K8sError(f"{path}:{number}: expected KEY=VALUE with KEY of [-._a-zA-Z0-9]")
        found[key.strip()] = value.encode("utf-8")
    return found


def _api_env(ref: SecretRef, api_env: Path | None) -> dict[str, bytes] | None:
    if api_env is not None:
        return read_env_file(api_env)
    if ref.optional:
        return None
    keys = ", ".join(sorted(ref.keys)) or "its settings"
    raise MissingKeyFileError(
        f"Secret {ref.namespace}/{ref.name} needs {keys} (used by {', '.join(ref.users)}): "
        "pass --api-env FILE with one KEY=VALUE line each"
    )


def _password() -> str:
    """A URL-safe password (it goes into a database URL unescaped)."""
    return secrets.token_hex(24)


def build_secrets(
    refs: Sequence[SecretRef],
    *,
    folders: KeyFolders,
    superlink_names: Sequence[str],
    api_env: Path | None = None,
    new_password: Callable[[], str] = _password,
) -> list[BuiltSecret]:
    """The Secrets ``refs`` name, from the files in ``folders``; an optional Secret
    without a source is left out. ``superlink_names`` are the names the SuperLink's
    certificate must carry (its Service's DNS names)."""
    built = []
    for ref in refs:
        replace = True
        data: dict[str, bytes] | None
        if ref.name == "fedrisk-link-tls":
            data = _link_tls(folders, superlink_names)
        elif ref.name == "fedrisk-node-allowlist":
            data = _allowlist(folders)
        elif ref.name == "fedrisk-node-key":
            data = _node_key(ref, folders)
        elif ref.name == "fedrisk-postgres":
            data = {"username": POSTGRES_USER.encode(), "password": new_password().encode()}
            replace = False
        elif ref.name == "fedrisk-api-secrets":
            data = _api_env(ref, api_env)
        else:
            raise ManifestError(
                f"{', '.join(ref.users)} use Secret {ref.name}, which the launcher does not "
                f"know how to build: create it with `kubectl -n {ref.namespace} create secret`"
            )
        if data is None:
            continue
        missing = sorted(ref.keys - set(data))
        if missing:
            raise K8sError(
                f"Secret {ref.namespace}/{ref.name} would lack {', '.join(missing)}, which "
                f"{', '.join(ref.users)} read"
            )
        built.append(BuiltSecret(_secret(ref, data), replace=replace))
    return built


def redacted(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with every value replaced by its size (for printing)."""
    out = copy.deepcopy(manifest)
    for key, value in (out.get("data") or {}).items():
        out["data"][key] = f"<redacted: {len(base64.b64decode(value))} bytes>"
    for key, value in (out.get("stringData") or {}).items():
        out["stringData"][key] = f"<redacted: {len(str(value).encode())} bytes>"
    return out
