"""Lending apps' client secrets: safe on a command line, shown once, checked by hash."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from coordinator.serving import apps
from coordinator.serving.apps import SECRET_PREFIX, AppRegistry


def add_app(folder: Path) -> tuple[AppRegistry, str]:
    registry = AppRegistry(folder / "apps.json")
    return registry, registry.add("farmer-app", institution="demo-bank", scopes=["score:*"])


def test_a_random_draw_that_starts_with_a_dash_still_gives_a_secret_that_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One URL-safe base64 draw in 64 starts with "-": force that draw.
    monkeypatch.setattr(apps.secrets, "token_urlsafe", lambda n: "-" + "A" * (4 * n // 3))

    registry, secret = add_app(tmp_path)

    assert not secret.startswith("-")
    assert registry.authenticate("farmer-app", secret) is not None


def test_a_secret_is_read_as_an_option_value_on_a_command_line(tmp_path: Path) -> None:
    _, secret = add_app(tmp_path)
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--bank-secret", required=True)

    args = parser.parse_args(["--app-secret", secret, "--bank-secret", secret])

    assert args.app_secret == secret
    assert re.fullmatch(re.escape(SECRET_PREFIX) + r"[A-Za-z0-9_-]{43}", secret)


def test_secrets_are_fresh_and_only_their_hash_is_kept(tmp_path: Path) -> None:
    registry, first = add_app(tmp_path)
    second = registry.add("bank-channel", institution="demo-bank", scopes=["consent:write"])

    stored = (tmp_path / "apps.json").read_text(encoding="utf-8")

    assert first != second
    assert first not in stored and second not in stored
    assert registry.authenticate("farmer-app", second) is None


def test_a_revoked_app_no_longer_authenticates_and_its_id_can_be_reused(tmp_path: Path) -> None:
    registry, secret = add_app(tmp_path)
    assert registry.authenticate("farmer-app", secret) is not None  # remembered as verified

    registry.revoke("farmer-app")
    again = AppRegistry(tmp_path / "apps.json")
    fresh = again.add("farmer-app", institution="demo-bank", scopes=["score:*"])

    assert registry.authenticate("farmer-app", secret) is None
    assert again.authenticate("farmer-app", secret) is None
    assert again.authenticate("farmer-app", fresh) is not None


def test_revoking_an_unknown_app_names_the_registered_ones(tmp_path: Path) -> None:
    registry, _ = add_app(tmp_path)

    with pytest.raises(ValueError, match=r"no app 'farmer-ap'; registered apps: farmer-app"):
        registry.revoke("farmer-ap")
