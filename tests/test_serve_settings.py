"""``fedrisk serve``'s scoring API settings: where it finds the participants' nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedrisk import PARTICIPANTS_ENV, serve_settings

EMBEDDED = {"bank": "http://127.0.0.1:8101", "gov": "http://127.0.0.1:8102"}
CLUSTER = {"gov": "http://fedrisk-partial.fedrisk-participant-gov:8101"}


def test_the_api_alone_calls_the_nodes_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PARTICIPANTS_ENV, json.dumps(CLUSTER))
    settings = serve_settings(tmp_path, endpoints=EMBEDDED, only="api", host="0.0.0.0", port=8080)
    assert settings.participants == CLUSTER
    assert settings.state_dir == tmp_path / "serving"
    assert settings.registry == tmp_path / "runs" / "registry"


@pytest.mark.parametrize("only", [None, "api"])
def test_without_the_environment_the_embedded_nodes_are_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, only: str | None
) -> None:
    monkeypatch.delenv(PARTICIPANTS_ENV, raising=False)
    settings = serve_settings(tmp_path, endpoints=EMBEDDED, only=only, host="h", port=1)
    assert settings.participants == EMBEDDED
    assert (settings.host, settings.port) == ("h", 1)


def test_serving_everything_in_one_process_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PARTICIPANTS_ENV, json.dumps(CLUSTER))
    settings = serve_settings(tmp_path, endpoints=EMBEDDED, only=None, host="h", port=1)
    assert settings.participants == EMBEDDED


def test_a_malformed_environment_value_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PARTICIPANTS_ENV, "gov=http://x")
    with pytest.raises(ValueError, match="participants"):
        serve_settings(tmp_path, endpoints=EMBEDDED, only="api", host="h", port=1)
