"""The steward's TLS material for a federation's SuperLink: a private CA and a server
certificate it signs, on a standard curve (ECDSA over NIST P-384, SHA-384).

Layout of a deployment's credentials folder (default ``<federation dir>/deployment``)::

    ca.crt            the CA certificate: give it to every participant (public)
    ca.key            the CA's private key (0600): stays with the steward
    superlink.crt     the SuperLink's certificate, for the names and addresses it serves
    superlink.key     its private key (0600)
    nodes/NAME.pub    each participant's node public key (sent by the participant)

Private keys are written atomically with mode 0600 in a 0700 folder; nothing is
overwritten unless asked. A participant's own private key is made at the participant
(``fedrisk keys node``), never here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from privacy._files import atomic_write_bytes

__all__ = [
    "DEFAULT_NAMES",
    "CredentialsError",
    "LinkCredentials",
    "issue_link_credentials",
    "link_credentials",
]

#: A SuperLink certificate always covers loopback, for the steward's own tools.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 5 * 365
SERVER_DAYS = 397  # the CA/Browser Forum's ceiling for a server certificate


class CredentialsError(Exception):
    """Deployment credentials are missing, unreadable or would be overwritten."""


@dataclass(frozen=True)
class LinkCredentials:
    """Where a deployment's SuperLink credentials are."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "superlink.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "superlink.key"

    @property
    def nodes(self) -> Path:
        return self.folder / "nodes"

    def node_keys(self) -> list[Path]:
        """The node public keys registered with this deployment, by file name."""
        return sorted(self.nodes.glob("*.pub")) if self.nodes.is_dir() else []

    def missing(self) -> list[Path]:
        """The files a TLS SuperLink needs that are not there."""
        return [p for p in (self.ca_cert, self.server_cert, self.server_key) if not p.is_file()]


def link_credentials(folder: Path) -> LinkCredentials:
    """The credentials in ``folder``, checked complete (else :class:`CredentialsError`)."""
    found = LinkCredentials(Path(folder))
    missing = found.missing()
    if missing:
        names = ", ".join(p.name for p in missing)
        raise CredentialsError(
            f"{found.folder}: no {names}; create them with `fedrisk keys tls FEDERATION "
            "--host NAME`, or start on loopback without TLS with --insecure"
        )
    return found


def issue_link_credentials(
    folder: Path,
    *,
    names: Sequence[str] = (),
    federation: str,
    force: bool = False,
    now: dt.datetime | None = None,
) -> LinkCredentials:
    """A new CA and a SuperLink certificate for ``names`` (host names or IP addresses,
    always with loopback) in ``folder``."""
    found = LinkCredentials(Path(folder))
    held = (found.ca_cert, found.ca_key, found.server_cert, found.server_key)
    existing = [p for p in held if p.exists()]
    if existing and not force:
        raise CredentialsError(
            f"{found.folder} already holds {existing[0].name}: pass --force to replace the "
            "CA (every participant then needs the new ca.crt)"
        )
    at = now or dt.datetime.now(dt.UTC)
    found.folder.mkdir(parents=True, exist_ok=True)
    found.folder.chmod(0o700)
    found.nodes.mkdir(exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedrisk"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"fedrisk {federation} CA"),
        ]
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), at, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA384())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    all_names = list(dict.fromkeys([*names, *DEFAULT_NAMES]))
    server_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedrisk"),
            x509.NameAttribute(NameOID.COMMON_NAME, all_names[0]),
        ]
    )
    server_cert = (
        _builder(server_name, ca_name, server_key.public_key(), at, SERVER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in all_names]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA384())
    )
    atomic_write_bytes(found.ca_key, _private_pem(ca_key), mode=0o600)
    atomic_write_bytes(found.server_key, _private_pem(server_key), mode=0o600)
    atomic_write_bytes(found.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    atomic_write_bytes(
        found.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), mode=0o644
    )
    return found


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePublicKey,
    at: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - dt.timedelta(minutes=5))
        .not_valid_after(at + dt.timedelta(days=days))
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
