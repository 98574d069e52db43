"""Authorization before validation: every route of the scoring API decides who may call it
before it looks at the body (issue 17, item 4). The walk covers every operation in the
OpenAPI document, so a route added later without a declared scope fails here."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coordinator.serving.app import create_app
from coordinator.serving.service import ServingState
from coordinator.serving.settings import ServeSettings

#: Operations anyone may call: the token endpoint authenticates the client from its body.
PUBLIC = {
    ("post", "/v1/oauth/token"),
    ("get", "/v1/ledger/head"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}
PATH_VALUES = {
    "model": "farmer-credit",
    "grant_id": "g-1",
    "subject_id": "F1",
    "evidence_id": "e1",
    "alert_id": "a1",
}
#: Not JSON at all, and JSON of the wrong shape for every request body of the API.
MALFORMED = (b'{"subject_id": ', b"[]")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServingState, TestClient]]:
    folder = tmp_path_factory.mktemp("authorization")
    state = ServingState.from_settings(
        ServeSettings(state_dir=folder / "serving", registry=folder / "registry")
    )
    with TestClient(create_app(state)) as client:
        yield state, client


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(method, path, op) for path, ops in paths.items() for method, op in ops.items()]


def _scopes(op: dict[str, Any]) -> list[str] | None:
    """The scopes an operation declares (None: it declares no security at all)."""
    requirements = op.get("security")
    if not requirements:
        return None
    return [
        scope for requirement in requirements for scopes in requirement.values() for scope in scopes
    ]


def _headers(
    client: TestClient, state: ServingState, name: str, scopes: list[str]
) -> dict[str, str]:
    secret = state.apps.add(
        name, institution="demo-bank", scopes=scopes, rate_per_s=1e4, burst=10_000
    )
    answer = client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": name, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _call(client: TestClient, method: str, path: str, headers: dict[str, str], body: bytes | None):  # type: ignore[no-untyped-def]
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    if body is None:
        return client.request(method, url, headers=headers)
    return client.request(
        method, url, content=body, headers={**headers, "Content-Type": "application/json"}
    )


def _every_scope(client: TestClient) -> set[str]:
    found = {s for _, _, op in _operations(client) for s in _scopes(op) or []}
    return {s.format_map(PATH_VALUES) for s in found}


def test_every_route_but_the_public_ones_declares_its_scope(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    undeclared = [
        (method, path)
        for method, path, op in _operations(client)
        if (method, path) not in PUBLIC and _scopes(op) is None
    ]
    assert undeclared == []
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    flow = schemes["client_credentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/oauth/token"
    assert {"consent:write", "consent:read", "evidence:read", "score:*"} <= set(flow["scopes"])


def test_no_token_and_a_malformed_body_is_401_on_every_route(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    statuses = {}
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC:
            continue
        for body in (*MALFORMED, None) if "requestBody" in op else (None,):
            statuses[(method, path, body)] = _call(client, method, path, {}, body).status_code
    assert statuses and set(statuses.values()) == {401}, statuses


def test_a_token_without_the_scope_and_a_malformed_body_is_403_on_every_route(api) -> None:  # type: ignore[no-untyped-def]
    state, client = api
    every = _every_scope(client)
    statuses = {}
    for method, path, op in _operations(client):
        needed = [s.format_map(PATH_VALUES) for s in _scopes(op) or []]
        if (method, path) in PUBLIC or not needed:
            continue
        # every other scope the API knows, so one scope never stands in for another
        held = sorted(every - set(needed) - {"score:*"}) or ["consent:read"]
        headers = _headers(client, state, f"lacks-{method}-{len(statuses)}", held)
        for body in MALFORMED if "requestBody" in op else (None,):
            answer = _call(client, method, path, headers, body)
            statuses[(method, path, body)] = (answer.status_code, answer.json()["detail"]["reason"])
    assert len({(m, p) for m, p, _ in statuses}) >= 8
    assert set(statuses.values()) == {(403, "missing_scope")}, statuses


def test_with_the_scope_a_malformed_body_is_422_naming_the_fault(api) -> None:  # type: ignore[no-untyped-def]
    state, client = api
    headers = _headers(client, state, "holds-all", sorted(_every_scope(client)))
    statuses = {}
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC or "requestBody" not in op:
            continue
        for body in MALFORMED:
            answer = _call(client, method, path, headers, body)
            statuses[(method, path, body)] = (answer.status_code, answer.json()["detail"]["reason"])
    assert len(statuses) >= 4
    assert set(statuses.values()) == {(422, "invalid_request")}, statuses


def test_the_issue_example_consent_write_missing(api) -> None:  # type: ignore[no-untyped-def]
    state, client = api
    reader = _headers(client, state, "channel-reader", ["consent:read"])
    answer = client.post("/v1/consents", json={"subject_id": 7}, headers=reader)
    assert answer.status_code == 403
    assert answer.json()["detail"] == {
        "reason": "missing_scope",
        "message": "this app's token lacks the scope consent:write",
    }


def test_the_model_scope_comes_from_the_path(api) -> None:  # type: ignore[no-untyped-def]
    state, client = api
    farmer = _headers(client, state, "farmer-only", ["score:farmer-credit"])
    other = client.post("/v1/models/sme-risk/score", json={"subject_id": "S1"}, headers=farmer)
    mine = client.post("/v1/models/farmer-credit/score", json={"subject_id": "F1"}, headers=farmer)
    assert other.status_code == 403 and "score:sme-risk" in other.json()["detail"]["message"]
    assert mine.status_code == 404 and mine.json()["detail"]["reason"] == "unknown_model"


def test_a_refused_call_spends_quota_once(api) -> None:  # type: ignore[no-untyped-def]
    """The guard decides once per request, though the route depends on it again."""
    state, client = api
    secret = state.apps.add(
        "two-calls", institution="demo-bank", scopes=["consent:read"], rate_per_s=1e-3, burst=2
    )
    token = client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "two-calls",
            "client_secret": secret,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    first = client.get("/v1/subjects/F1/consents", headers=headers)
    second = client.get("/v1/subjects/F1/consents", headers=headers)
    third = client.get("/v1/subjects/F1/consents", headers=headers)
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)


def test_the_token_endpoint_takes_http_basic_client_credentials(api) -> None:  # type: ignore[no-untyped-def]
    """RFC 6749 §2.3.1 (what Swagger UI's Authorize button sends by default)."""
    state, client = api
    secret = state.apps.add("basic-app", institution="demo-bank", scopes=["consent:read"])
    form = {"grant_type": "client_credentials"}
    good = client.post("/v1/oauth/token", data=form, auth=("basic-app", secret))
    wrong = client.post("/v1/oauth/token", data=form, auth=("basic-app", secret + "x"))
    both = client.post(
        "/v1/oauth/token",
        data={**form, "client_id": "basic-app", "client_secret": secret},
        auth=("basic-app", secret),
    )
    garbled = client.post("/v1/oauth/token", data=form, headers={"Authorization": "Basic %%%"})
    nothing = client.post("/v1/oauth/token", data=form)
    unencoded = base64.b64encode(b"no-colon").decode()
    colonless = client.post(
        "/v1/oauth/token", data=form, headers={"Authorization": f"Basic {unencoded}"}
    )
    assert good.status_code == 200 and good.json()["scope"] == "consent:read"
    assert [wrong.status_code, both.status_code, garbled.status_code] == [401, 400, 401]
    assert [nothing.status_code, colonless.status_code] == [401, 401]
    assert nothing.headers["WWW-Authenticate"] == "Basic"
