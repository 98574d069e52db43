"""The API documentation pages work without internet access (issue 17, item 3): /docs and
/redoc of the coordinator's API and of a participant's service name no other host, and
every script, style and icon they load is served by the app itself."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consent.assertions import AssertionSigner, AssertionVerifier
from coordinator.serving.app import create_app
from coordinator.serving.service import ServingState
from coordinator.serving.settings import ServeSettings
from participants.serving.app import create_participant_app


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append((tag, value))


def _coordinator(folder: Path) -> FastAPI:
    return create_app(
        ServingState.from_settings(
            ServeSettings(state_dir=folder / "serving", registry=folder / "registry")
        )
    )


def _participant(folder: Path) -> FastAPI:
    key = AssertionSigner.in_folder(folder / "signer").public_key
    return create_participant_app(
        party="gov", parts={}, verifier=AssertionVerifier(key, audience="gov")
    )


@pytest.mark.parametrize("make", [_coordinator, _participant], ids=["coordinator", "participant"])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_names_no_other_host_and_its_assets_are_served(
    make, page: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(make(tmp_path))
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.text
    assert "://" not in html, [line for line in html.splitlines() if "://" in line]
    links = _Links()
    links.feed(html)
    scripts = [url for tag, url in links.urls if tag == "script"]
    assert scripts, "the page loads no script"
    for tag, url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), (tag, url)
        asset = client.get(url)
        assert asset.status_code == 200, url
        if tag == "script":
            assert len(asset.content) > 100_000, url  # the real bundle, not a placeholder
            assert "javascript" in asset.headers["content-type"], url


def test_swagger_ui_sends_nothing_to_its_online_validator(tmp_path: Path) -> None:
    client = TestClient(_coordinator(tmp_path))
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    assert "SwaggerUIBundle(" in html


def test_the_oauth2_redirect_page_is_kept(tmp_path: Path) -> None:
    client = TestClient(_coordinator(tmp_path))
    html = client.get("/docs").text
    assert "/docs/oauth2-redirect" in html
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
