"""The deployment commands without a running deployment: what they refuse, what they write,
and the Flower command lines they build (TLS and node authentication unless --insecure).

The commands running a real federation are in tests/test_deployment.py.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coordinator.flwr_control import FlwrControl
from coordinator.link_credentials import link_credentials
from coordinator.superlink import Superlink
from fedrisk import app
from models.federation import load_federation
from models.layout import deployment_dir, node_keys_dir
from participants.node_credentials import node_key
from participants.supernode import Supernode
from tests.test_deployment import PARTICIPANTS, write_federation


@pytest.fixture
def federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FEDRISK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return write_federation(tmp_path, rows=40)


def fedrisk(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_is_one_group_holding_both_sides_commands() -> None:
    code, output = fedrisk("keys", "--help")
    assert code == 0
    for command in ("tls", "node", "provision", "deployment"):
        assert command in output


def test_link_start_refuses_to_run_without_tls_unless_insecure(federation: Path) -> None:
    code, output = fedrisk("link", "start", str(federation))
    assert code == 1
    assert "ca.crt" in output and "fedrisk keys tls" in output and "--insecure" in output


def test_node_start_refuses_without_the_ca_or_its_key(federation: Path) -> None:
    code, output = fedrisk("node", "start", str(federation), "--participant", "p1")
    assert code == 1 and "--ca" in output and "--insecure" in output

    assert fedrisk("keys", "tls", str(federation))[0] == 0
    code, output = fedrisk("node", "start", str(federation), "--participant", "p1")
    assert code == 1 and "fedrisk keys node" in output

    code, output = fedrisk("node", "start", str(federation), "--participant", "nobody")
    assert code == 1 and "no participant 'nobody'" in output and "p1" in output


def test_link_run_refuses_without_the_ca(federation: Path) -> None:
    code, output = fedrisk("link", "run", str(federation))
    assert code == 1 and "ca.crt" in output and "--credentials" in output


def test_keys_deployment_allows_every_participant_and_keeps_existing_keys(
    federation: Path,
) -> None:
    spec = load_federation(federation)
    assert fedrisk("keys", "deployment", str(federation), "--host", "link.example")[0] == 0
    found = link_credentials(deployment_dir(spec))
    allowed = {key.name: key.read_bytes() for key in found.node_keys()}
    assert sorted(allowed) == [f"{name}.pub" for name in PARTICIPANTS]
    first = {}
    for name in PARTICIPANTS:
        key = node_key(node_keys_dir(spec), name)
        assert allowed[key.public.name] == key.public.read_bytes()
        assert mode(key.private) == 0o600
        first[name] = key.private.read_bytes()
    assert mode(found.ca_key) == mode(found.server_key) == 0o600
    assert mode(found.folder) == mode(node_keys_dir(spec)) == 0o700
    ca = found.ca_cert.read_bytes()

    assert fedrisk("keys", "deployment", str(federation))[0] == 0
    assert found.ca_cert.read_bytes() == ca
    for name in PARTICIPANTS:
        assert node_key(node_keys_dir(spec), name).private.read_bytes() == first[name]

    code, output = fedrisk("keys", "tls", str(federation))
    assert code == 1 and "--force" in output
    assert found.ca_cert.read_bytes() == ca


def test_keys_node_refuses_to_overwrite_without_force(federation: Path) -> None:
    assert fedrisk("keys", "node", str(federation), "--participant", "p2")[0] == 0
    spec = load_federation(federation)
    before = node_key(node_keys_dir(spec), "p2").private.read_bytes()
    code, output = fedrisk("keys", "node", str(federation), "--participant", "p2")
    assert code == 1 and "--force" in output
    assert node_key(node_keys_dir(spec), "p2").private.read_bytes() == before
    assert fedrisk("keys", "node", str(federation), "--participant", "p2", "--force")[0] == 0
    assert node_key(node_keys_dir(spec), "p2").private.read_bytes() != before


def test_superlink_command_turns_on_tls_and_node_auth(federation: Path, tmp_path: Path) -> None:
    assert fedrisk("keys", "tls", str(federation))[0] == 0
    found = link_credentials(deployment_dir(load_federation(federation)))
    secure = Superlink(host="0.0.0.0", port=9093, credentials=found, database=tmp_path / "s.db")
    command = secure.command()
    assert "--insecure" not in command
    assert "--enable-supernode-auth" in command
    for flag, path in (
        ("--ssl-ca-certfile", found.ca_cert),
        ("--ssl-certfile", found.server_cert),
        ("--ssl-keyfile", found.server_key),
        ("--database", tmp_path / "s.db"),
    ):
        assert command[command.index(flag) + 1] == str(path)
    assert secure.local_address == "127.0.0.1:9093"

    insecure = Superlink(host="127.0.0.1", port=1, credentials=None, database=tmp_path / "s.db")
    assert "--insecure" in insecure.command()
    assert "--enable-supernode-auth" not in insecure.command()


def test_supernode_command_authenticates_with_the_node_key(federation: Path) -> None:
    assert fedrisk("keys", "deployment", str(federation))[0] == 0
    spec = load_federation(federation)
    key = node_key(node_keys_dir(spec), "p3")
    ca = deployment_dir(spec) / "ca.crt"
    node = Supernode(
        federation=federation, participant="p3", superlink="link:9093", port=9101, ca_cert=ca,
        key=key,
    )  # fmt: skip
    command = node.command()
    assert "--insecure" not in command
    assert command[command.index("--root-certificates") + 1] == str(ca)
    assert command[command.index("--auth-supernode-private-key") + 1] == str(key.private)
    assert command[command.index("--node-config") + 1] == (
        f'federation="{federation.resolve()}" participant="p3"'
    )
    plain = Supernode(
        federation=federation, participant="p3", superlink="l:1", port=1, ca_cert=None, key=None
    )
    assert "--insecure" in plain.command()
    assert "--auth-supernode-private-key" not in plain.command()


def test_flwr_connection_trusts_the_ca_and_only_says_insecure_when_asked(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    secure = FlwrControl(home=tmp_path / "a", address="h:1", ca_cert=ca).write_connection()
    text = secure.read_text()
    assert f'root-certificates = "{ca.resolve()}"' in text and "insecure" not in text
    plain = FlwrControl(home=tmp_path / "b", address="h:1", ca_cert=None).write_connection()
    assert "insecure = true" in plain.read_text()
