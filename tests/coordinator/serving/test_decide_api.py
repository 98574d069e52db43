"""``POST /v1/models/{model}/decide``: consent-gated scoring, the model's decision policy,
and a ledger record that replays exactly (coordinator/serving/deciding.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from coordinator.decisions import replay_ledger
from coordinator.decisions.records import DECISION_KIND
from tests.support.serving import (
    INSTITUTION,
    MODEL,
    Service,
    grant_body,
    service,
    train_and_publish,
)

SUBJECT = "C100100"  # held by both parties
BOTH = ["bank.loans", "gov.agri"]
POLICY = f"""
[policy]
name = "serving-test-policy"
version = "7"
model = "{MODEL}"
max_model_age_days = 30

[score]                    # wide enough that the test model's scores are all approved
approve_below = 1.0
decline_at_or_above = 1.0

[limit]
by_band = {{ A = 500000, B = 500000, C = 500000, D = 500000, E = 500000 }}
round_down_to = 1000

[increase]
min_score_improvement = 0.0
max_score = 1.0
step = 0.5
max_limit = 10000000

[[rules]]
field = "court_cases"
op = ">"
value = 0
outcome = "decline"
reason = "open court cases"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, TestClient]]:
    folder = tmp_path_factory.mktemp("deciding")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDRISK_HOME", str(folder / "home"))
    spec = train_and_publish(folder)
    (folder / "policies").mkdir()
    (folder / "policies" / "serving-test.toml").write_text(POLICY)
    svc = service(folder, spec)
    with TestClient(svc.app) as client:  # type: ignore[arg-type]
        secret = svc.state.apps.add(
            "lending-app",
            institution=INSTITUTION,
            scopes=(f"score:{MODEL}", "consent:write", "evidence:read"),
            rate_per_s=1000.0,
            burst=1000,
        )
        token = client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "lending-app",
                  "client_secret": secret},
        ).json()["access_token"]  # fmt: skip
        client.headers["Authorization"] = f"Bearer {token}"
        yield svc, client
    mp.undo()


@pytest.fixture(autouse=True)
def node_home() -> None:
    """The module's parts live in the module's node home: keep it (overrides the suite's)."""


def _grant(client: TestClient, subject: str) -> str:
    answer = client.post("/v1/consents", json=grant_body(subject, categories=BOTH))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["grant_id"])


def _decide(client: TestClient, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/models/{MODEL}/decide", json={"subject_id": SUBJECT, **body})


def _decisions(svc: Service) -> int:
    return svc.state.consent.ledger.count_of_kind(DECISION_KIND)


def test_a_consented_application_is_decided_with_reasons_versions_and_evidence(served) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    grant_id = _grant(client, SUBJECT)

    new = _decide(client, requested_amount=250_500.0, figures={"court_cases": 0})
    sued = _decide(client, requested_amount=250_500.0, figures={"court_cases": 2})
    existing = _decide(client, current_limit=100_000.0, previous_score=1.0,
                       figures={"court_cases": 0})  # fmt: skip

    assert new.status_code == 200, new.text
    body = new.json()
    assert (body["outcome"], body["limit"]) == ("approve", 250_000.0)
    assert (body["policy"], body["policy_version"], body["grant_id"]) == (
        "serving-test-policy", "7", grant_id
    )  # fmt: skip
    assert body["reasons"][0]["code"] == "score_low_risk" and body["reason_codes"]
    assert sued.json()["outcome"] == "decline"
    assert "court_cases = 2" in sued.json()["reasons"][-1]["text"]
    assert (existing.json()["outcome"], existing.json()["limit"]) == ("increase", 150_000.0)
    ledger = svc.state.consent.ledger
    assert ledger.find(body["scoring_evidence_id"]).body["kind"] == "scoring_decision"
    record = ledger.find(body["evidence_id"]).body
    assert record["kind"] == DECISION_KIND and SUBJECT not in str(record)
    report = replay_ledger(ledger)
    assert report.ok and report.decisions >= 3


def test_no_consent_gives_403_no_decision_and_no_call_to_any_party(served) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    before, calls = _decisions(svc), len(svc.calls)

    answer = _decide(client, subject_id="C100200", requested_amount=1000.0)

    assert answer.status_code == 403
    assert answer.json()["detail"]["reason"] == "never_granted"
    assert (_decisions(svc), len(svc.calls)) == (before, calls)


def test_consent_withdrawn_mid_loan_stops_the_next_decision(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    subject = "C100300"
    grant_id = _grant(client, subject)
    first = _decide(client, subject_id=subject, current_limit=10_000.0, previous_score=1.0,
                    figures={"court_cases": 0})  # fmt: skip
    client.post(f"/v1/consents/{grant_id}/withdraw")

    again = _decide(client, subject_id=subject, current_limit=10_000.0, previous_score=1.0)

    assert first.json()["outcome"] == "increase"
    assert again.status_code == 403 and again.json()["detail"]["reason"] == "withdrawn"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"figures": {"court_case": 1}}, "unknown_figure"),
        ({"figures": {"current_limit": 1}}, "unknown_figure"),
        ({"requested_amount": -5}, "invalid_request"),
        ({"previous_score": 1.5}, "invalid_request"),
    ],
)
def test_a_malformed_application_gets_422_before_any_party_is_called(served, body, reason) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    calls = len(svc.calls)

    answer = _decide(client, **body)

    assert answer.status_code == 422
    assert answer.json()["detail"]["reason"] == reason
    assert len(svc.calls) == calls


def test_a_model_without_a_policy_gets_404(served, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    monkeypatch.setattr(svc.state, "policies", {})

    answer = _decide(client)

    assert answer.status_code == 404 and answer.json()["detail"]["reason"] == "no_policy"
