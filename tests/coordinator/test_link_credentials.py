"""The SuperLink's TLS material: file layout and modes, certificate contents, a real
TLS handshake on loopback, refusal to overwrite, and the completeness check."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from coordinator.link_credentials import (
    CredentialsError,
    LinkCredentials,
    issue_link_credentials,
    link_credentials,
)

NAMES = ["link.bank.example", "10.0.0.5"]


def issue(folder: Path, *, force: bool = False) -> LinkCredentials:
    return issue_link_credentials(folder, names=NAMES, federation="f", force=force)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_issue_writes_the_layout_with_private_modes(tmp_path: Path) -> None:
    folder = tmp_path / "deployment"
    creds = issue(folder)
    assert creds.folder == folder
    for name in ("ca.crt", "ca.key", "superlink.crt", "superlink.key"):
        assert (folder / name).is_file(), name
    assert (folder / "nodes").is_dir()
    assert mode(folder) == 0o700
    assert mode(folder / "ca.key") == 0o600
    assert mode(folder / "superlink.key") == 0o600
    assert not list(folder.glob(".*.tmp"))


def test_ca_certificate_is_a_p384_sha384_ca(tmp_path: Path) -> None:
    ca = load(issue(tmp_path).ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP384R1)
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA384)
    ca.verify_directly_issued_by(ca)  # self-signed


def test_server_certificate_is_issued_by_the_ca_for_the_given_names(tmp_path: Path) -> None:
    creds = issue(tmp_path)
    ca, server = load(creds.ca_cert), load(creds.server_cert)
    server.verify_directly_issued_by(ca)
    assert server.issuer == ca.subject
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    key = server.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP384R1)
    assert isinstance(server.signature_hash_algorithm, hashes.SHA384)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"link.bank.example", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=398)
    now = dt.datetime.now(dt.UTC)
    assert server.not_valid_before_utc <= now < server.not_valid_after_utc


def test_the_server_key_matches_the_server_certificate(tmp_path: Path) -> None:
    creds = issue(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(creds.server_cert, creds.server_key)  # raises on a mismatch


@contextmanager
def tls_server(creds: LinkCredentials) -> Iterator[int]:
    """A loopback TLS echo server with the SuperLink's certificate; yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(creds.server_cert, creds.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(5)
            with suppress(ssl.SSLError, OSError), ctx.wrap_socket(raw, server_side=True) as conn:
                conn.sendall(conn.recv(64))
            raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def handshake(port: int, cafile: Path, hostname: str) -> bytes:
    client = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname=hostname) as conn,
    ):
        conn.sendall(b"ping")
        return conn.recv(64)


def test_tls_handshake_trusts_only_the_issuing_ca_and_listed_names(tmp_path: Path) -> None:
    creds = issue(tmp_path / "a")
    other = issue(tmp_path / "b")
    with tls_server(creds) as port:
        assert handshake(port, creds.ca_cert, "localhost") == b"ping"
        assert handshake(port, creds.ca_cert, "link.bank.example") == b"ping"
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, other.ca_cert, "localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, creds.ca_cert, "evil.example")


def test_issue_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    creds = issue(tmp_path)
    files = [creds.ca_cert, creds.ca_key, creds.server_cert, creds.server_key]
    before = {p: p.read_bytes() for p in files}
    with pytest.raises(CredentialsError, match="--force"):
        issue(tmp_path)
    assert {p: p.read_bytes() for p in files} == before


def test_issue_refuses_when_only_a_server_key_is_left(tmp_path: Path) -> None:
    creds = issue(tmp_path)
    for path in (creds.ca_cert, creds.ca_key, creds.server_cert):
        path.unlink()
    key = creds.server_key.read_bytes()
    with pytest.raises(CredentialsError, match=r"superlink\.key"):
        issue(tmp_path)
    assert creds.server_key.read_bytes() == key


def test_issue_with_force_replaces_the_ca(tmp_path: Path) -> None:
    creds = issue(tmp_path)
    old_ca, old_key = creds.ca_cert.read_bytes(), creds.ca_key.read_bytes()
    issue(tmp_path, force=True)
    assert creds.ca_cert.read_bytes() != old_ca
    assert creds.ca_key.read_bytes() != old_key
    load(creds.server_cert).verify_directly_issued_by(load(creds.ca_cert))
    assert mode(creds.ca_key) == 0o600


def test_link_credentials_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as empty:
        link_credentials(tmp_path)
    message = str(empty.value)
    for name in ("ca.crt", "superlink.crt", "superlink.key", "--insecure", "fedrisk keys tls"):
        assert name in message, name

    creds = issue(tmp_path / "d")
    creds.server_key.unlink()
    with pytest.raises(CredentialsError) as partial:
        link_credentials(creds.folder)
    assert "superlink.key" in str(partial.value)
    assert "ca.crt" not in str(partial.value)
    assert creds.missing() == [creds.server_key]


def test_link_credentials_on_a_complete_folder(tmp_path: Path) -> None:
    issue(tmp_path)
    found = link_credentials(tmp_path)
    assert isinstance(found, LinkCredentials)
    assert found.missing() == []
    assert found.node_keys() == []
    for name in ("zeta", "bank", "gov"):
        (found.nodes / f"{name}.pub").write_text("ecdsa-sha2-nistp384 AAAA x\n")
    (found.nodes / "notes.txt").write_text("not a key")
    assert found.node_keys() == [found.nodes / f"{n}.pub" for n in ("bank", "gov", "zeta")]


def test_node_keys_without_a_nodes_folder(tmp_path: Path) -> None:
    assert LinkCredentials(tmp_path / "absent").node_keys() == []
