"""The scoring API end to end: tokens, scopes, quotas, the consent gate, partial inference
at both parties over HTTP, reason codes and evidence. Consent behaviours are numbered as in
../shared/REFERENCE.md."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from consent.assertions import AssertionSigner, AssertionVerifier
from consent.ledger.certificate import verify_certificate
from models.registry import ModelRegistry
from models.vertical_parts import combine, score_parts
from participants.serving.app import create_participant_app
from participants.serving.node import node_parts
from participants.vertical_state import part_dir
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
SECRETS: dict[str, str] = {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, TestClient, Path]]:
    folder = tmp_path_factory.mktemp("serving")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDRISK_HOME", str(folder / "home"))
    spec = train_and_publish(folder)
    svc = service(folder, spec)
    with TestClient(svc.app) as client:  # type: ignore[arg-type]
        yield svc, client, folder
    mp.undo()


@pytest.fixture(autouse=True)
def node_home() -> None:
    """The module's parts live in the module's node home: keep it (overrides the suite's)."""


def _token(
    svc: Service,
    client: TestClient,
    name: str,
    *,
    institution: str = INSTITUTION,
    scopes: tuple[str, ...] = (f"score:{MODEL}", "consent:write", "consent:read", "evidence:read"),
    rate: float = 1000.0,
    burst: int = 1000,
) -> dict[str, str]:
    if name not in SECRETS:
        SECRETS[name] = svc.state.apps.add(
            name, institution=institution, scopes=scopes, rate_per_s=rate, burst=burst
        )
    secret = SECRETS[name]
    answer = client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": name, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _grant(client: TestClient, headers: dict[str, str], subject: str, **kw: object) -> str:
    body = grant_body(subject, categories=kw.pop("categories", BOTH))  # type: ignore[arg-type]
    body.update(kw)
    answer = client.post("/v1/consents", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["grant_id"])


def _score(client: TestClient, headers: dict[str, str], subject: str):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/models/{MODEL}/score", json={"subject_id": subject}, headers=headers)


def test_a_consented_subject_is_scored_by_both_parts_with_reasons_and_evidence(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    grant_id = _grant(client, headers, SUBJECT)

    answer = _score(client, headers, SUBJECT)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["grant_id"] == grant_id and body["model"] == MODEL
    # The score is exactly the parties' ONNX parts plus the combiner, run directly.
    card = ModelRegistry(svc.spec.output_dir / "registry").latest(MODEL)
    refs = {p["party"]: p for p in card.card.architecture["parts"]}
    rows = {
        "bank": pd.read_csv(_file(svc, "bank.csv"))
        .set_index("cid")
        .loc[SUBJECT, ["g0", "g1", "g2"]],
        "gov": pd.read_csv(_file(svc, "gov.csv"))
        .set_index("customer")
        .loc[SUBJECT, ["h0", "h1", "h2", "h3"]],
    }
    parts = {
        p: score_parts(
            part_dir(MODEL, p, refs[p]["export_id"]) / "part.onnx", rows[p].to_numpy(np.float32)
        )
        for p in rows
    }
    assert body["score"] == pytest.approx(float(combine(card.onnx_path, parts)[0]), abs=1e-9)
    assert body["risk_band"] in "ABCDE"
    assert all(r["contribution"] > 0 and r["text"] for r in body["reason_codes"])
    # Behaviour 10: the score traces to its grant and to an inclusion proof.
    certificate = client.get(f"/v1/evidence/{body['evidence_id']}", headers=headers).json()
    assert verify_certificate(
        certificate, public_key=svc.state.consent.ledger._signer.public_key
    ).ok  # type: ignore[union-attr]
    assert certificate["entry"]["body"]["grant_id"] == grant_id
    assert SUBJECT not in str(certificate)


def _file(svc: Service, name: str) -> Path:
    return svc.spec.path.parent / name


def test_no_consent_is_refused_logged_and_the_model_never_runs(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    before = svc.state.consent.ledger.size
    served_before = (
        svc.state.metrics.registry.get_sample_value(
            "fedrisk_scoring_decisions_total", {"model": MODEL, "outcome": "scored"}
        )
        or 0
    )

    answer = _score(client, headers, "C100200")  # behaviour 1

    assert answer.status_code == 403
    assert answer.json()["detail"]["reason"] == "never_granted"
    (refusal,) = [e.body for e in svc.state.consent.ledger.entries(before)]
    assert refusal["outcome"] == "refused" and refusal["score"] is None
    assert (
        svc.state.metrics.registry.get_sample_value(
            "fedrisk_scoring_decisions_total", {"model": MODEL, "outcome": "scored"}
        )
        == served_before
    )


@pytest.mark.parametrize(
    ("subject", "grant", "reason"),
    [
        ("C100300", {"purpose": "marketing"}, "wrong_purpose"),  # behaviour 2
        ("C100301", {"categories": ["bank.loans"]}, "categories_not_covered"),  # behaviour 3
        # behaviour 4: the bank's account data (sensitive) needs its own explicit consent
        ("C100302", {"categories": ["gov.agri"]}, "categories_not_covered"),
    ],
)
def test_consent_for_another_purpose_or_fewer_categories_does_not_cover_scoring(
    served,
    subject: str,
    grant: dict[str, object],
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    _grant(client, headers, subject, **grant)
    answer = _score(client, headers, subject)
    assert answer.status_code == 403 and answer.json()["detail"]["reason"] == reason


def test_expiry_counts_on_the_next_request(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    _grant(client, headers, "C100360", expires_at=expires.isoformat())  # behaviour 5
    assert _score(client, headers, "C100360").status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    answer = _score(client, headers, "C100360")
    assert answer.status_code == 403 and answer.json()["detail"]["reason"] == "expired"


def test_new_categories_need_a_new_grant(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    old = _grant(client, headers, "C100370", categories=["bank.loans"])  # behaviour 8
    assert _score(client, headers, "C100370").status_code == 403
    for method in ("PUT", "PATCH"):  # no route widens a grant in place
        changed = client.request(
            method, f"/v1/consents/{old}", json={"categories": BOTH}, headers=headers
        )
        assert changed.status_code in (404, 405)
    assert _score(client, headers, "C100370").status_code == 403
    _grant(client, headers, "C100370")
    assert _score(client, headers, "C100370").status_code == 200


def test_withdrawal_takes_effect_on_the_next_request_and_is_not_retroactive(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    grant_id = _grant(client, headers, "C100310")
    first = _score(client, headers, "C100310").json()

    withdrawn = client.post(f"/v1/consents/{grant_id}/withdraw", headers=headers)  # behaviour 6
    again = _score(client, headers, "C100310")

    assert withdrawn.status_code == 200
    assert again.status_code == 403 and again.json()["detail"]["reason"] == "withdrawn"
    old = client.get(f"/v1/evidence/{first['evidence_id']}", headers=headers).json()  # behaviour 7
    assert verify_certificate(old).ok
    listed = client.get("/v1/subjects/C100310/consents", headers=headers).json()
    assert [g["status"] for g in listed] == ["withdrawn"]
    assert client.post(f"/v1/consents/{grant_id}/withdraw", headers=headers).status_code == 409


def test_another_institutions_app_can_neither_score_nor_read_the_subject(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    ours = _token(svc, client, "farmer-app")
    theirs = _token(svc, client, "other-lender", institution="other-bank")
    grant_id = _grant(client, ours, "C100320")
    decision = _score(client, ours, "C100320").json()

    # Behaviour 11 / OWASP API1.
    assert _score(client, theirs, "C100320").status_code == 403
    assert client.get(f"/v1/consents/{grant_id}/receipt", headers=theirs).status_code == 404
    assert client.get("/v1/subjects/C100320/consents", headers=theirs).json() == []
    assert client.post(f"/v1/consents/{grant_id}/withdraw", headers=theirs).status_code == 404
    assert client.get(f"/v1/evidence/{decision['evidence_id']}", headers=theirs).status_code == 404
    assert client.get(f"/v1/consents/{grant_id}/receipt", headers=ours).status_code == 200


def test_tokens_scopes_and_quotas(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    secret = svc.state.apps.add(
        "tiny-app", institution=INSTITUTION, scopes=["consent:read"], rate_per_s=0.01, burst=2
    )
    form = {"grant_type": "client_credentials", "client_id": "tiny-app", "client_secret": secret}

    assert (
        client.post("/v1/oauth/token", data={**form, "client_secret": "wrong"}).status_code == 401
    )
    assert (
        client.post("/v1/oauth/token", data={**form, "grant_type": "password"}).status_code == 400
    )
    assert client.post("/v1/oauth/token", data={**form, "scope": "score:*"}).status_code == 400
    token = client.post("/v1/oauth/token", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):  # the burst
        assert _score(client, headers, SUBJECT).json()["detail"]["reason"] == "missing_scope"
    limited = _score(client, headers, SUBJECT)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert _score(client, {}, SUBJECT).status_code == 401
    assert _score(client, {"Authorization": "Bearer x.y.z"}, SUBJECT).status_code == 401


def test_batch_scores_the_consented_and_evidences_every_refusal(  # type: ignore[no-untyped-def]
    served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coordinator.serving.scoring.CHUNK", 2)  # several calls per party
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    consented = [f"C1004{i:02d}" for i in range(5)]
    for subject in consented:
        _grant(client, headers, subject)

    answer = client.post(
        f"/v1/models/{MODEL}/score/batch",
        headers=headers,
        json={"subject_ids": [*consented, "C100499", "C100498"], "reason_codes": True},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["subject_id"] for r in body["results"]] == consented
    assert {r["subject_id"]: r["reason"] for r in body["refused"]} == {
        "C100499": "never_granted",
        "C100498": "never_granted",
    }
    single = _score(client, headers, consented[0]).json()
    assert body["results"][0]["score"] == pytest.approx(single["score"], abs=1e-12)
    for item in (*body["results"], *body["refused"]):
        assert svc.state.consent.ledger.find(item["evidence_id"])


def _gov_node(svc: Service, folder: Path) -> TestClient:
    """The gov party's service, trusting the coordinator's assertion key."""
    registry = ModelRegistry(svc.spec.output_dir / "registry")
    real_key = AssertionSigner.in_folder(folder / "coordinator").public_key
    app = create_participant_app(
        party="gov",
        parts=node_parts(registry, [svc.spec.path], party="gov"),
        verifier=AssertionVerifier(real_key, audience="gov"),
    )
    return TestClient(app)


def _assertion(by: AssertionSigner) -> dict[str, str]:
    issued = by.issue(
        {SUBJECT: "g"},
        purpose="credit_scoring",
        categories=["gov.agri"],
        model=MODEL,
        audience="gov",
    )
    return {"Authorization": f"Bearer {issued}", "Content-Type": "application/json"}


def test_a_participant_refuses_a_request_without_a_valid_assertion(served) -> None:  # type: ignore[no-untyped-def]
    svc, _client, folder = served
    node = _gov_node(svc, folder)
    forger = AssertionSigner.in_folder(folder / "forger")
    ask = {"subject_ids": [SUBJECT]}

    forged = node.post(f"/v1/partial/{MODEL}", json=ask, headers=_assertion(forger))
    bare = node.post(f"/v1/partial/{MODEL}", json=ask)

    assert forged.status_code == 403 and forged.json()["detail"]["reason"] == "bad_signature"
    assert bare.status_code == 401


def test_a_participant_decides_on_the_assertion_before_reading_the_body(served) -> None:  # type: ignore[no-untyped-def]
    """A node answers 401/403 to a request without a valid assertion whatever its body,
    and reads the body (422 if malformed) only once the assertion is admitted."""
    svc, _client, folder = served
    node = _gov_node(svc, folder)
    signer = AssertionSigner.in_folder(folder / "coordinator")
    forger = AssertionSigner.in_folder(folder / "forger")

    url = f"/v1/partial/{MODEL}"
    for malformed in (b"{", b"[]", b'{"subject_ids": []}'):
        bare = node.post(url, content=malformed, headers={"Content-Type": "application/json"})
        forged = node.post(url, content=malformed, headers=_assertion(forger))
        assert bare.status_code == 401, bare.text
        assert forged.status_code == 403 and forged.json()["detail"]["reason"] == "bad_signature"

    real = _assertion(signer)
    assert node.post(url, content=b"[]", headers=real).status_code == 422
    # a malformed body did not spend the assertion; a good one does, once
    assert node.post(url, json={"subject_ids": [SUBJECT]}, headers=real).status_code == 200
    replayed = node.post(url, content=b"[]", headers=real)
    assert replayed.status_code == 403 and replayed.json()["detail"]["reason"] == "replayed"


def test_health_readiness_metrics_and_openapi(served) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    assert MODEL in client.get("/readyz").json()["models"]
    assert "fedrisk_requests_total" in client.get("/metrics").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/models/{model}/score", "/v1/models/{model}/score/batch", "/v1/consents"} <= set(
        paths
    )


def test_no_request_the_openapi_schema_allows_gets_a_server_error(served) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis over every operation, authenticated with every scope: 4xx, never 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    svc, client, _ = served
    headers = _token(
        svc,
        client,
        "fuzz-app",
        scopes=("score:*", "consent:write", "consent:read", "evidence:read"),
    )
    _grant(client, headers, SUBJECT) if not svc.state.consent.grants_of(SUBJECT) else None
    schema = schemathesis.openapi.from_asgi("/openapi.json", svc.app)
    statuses: dict[str, set[int]] = {}

    def check(operation) -> None:  # type: ignore[no-untyped-def]
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            statuses.setdefault(label, set()).add(response.status_code)
            assert response.status_code < 500, (label, response.text[:300])

        call()

    for result in schema.get_all_operations():
        check(result.ok())
    assert len(statuses) >= 10


def test_the_published_model_has_a_training_record_in_the_same_ledger(served) -> None:  # type: ignore[no-untyped-def]
    svc, _, _ = served
    ledger = svc.state.consent.ledger
    (record,) = ledger.bodies_of_kind("training_round")
    card = ModelRegistry(svc.spec.output_dir / "registry").latest(MODEL).card

    assert record["model_hash"] == card.onnx_sha256 and record["model_version"] == card.version
    assert set(record["part_hashes"]) == {"bank", "gov"} == set(record["data_commitments"])
    assert record["participants"] == ["bank", "gov"]
    assert ledger.verify().ok


def test_a_subject_can_ask_for_human_review_of_a_decision(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    ours = _token(svc, client, "farmer-app")
    theirs = _token(svc, client, "other-lender", institution="other-bank")
    _grant(client, ours, "C100330")
    decision = _score(client, ours, "C100330").json()["evidence_id"]

    asked = client.post(f"/v1/evidence/{decision}/review", headers=ours)  # behaviour 12

    assert asked.status_code == 202
    body = svc.state.consent.ledger.find(asked.json()["review_request"]).body
    assert body["decision"] == decision and body["kind"] == "review_request"
    assert client.post(f"/v1/evidence/{decision}/review", headers=theirs).status_code == 404


def test_no_subject_id_reaches_the_logs(served, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    _grant(client, headers, "C100340")
    with caplog.at_level(logging.DEBUG):
        assert _score(client, headers, "C100340").status_code == 200
        assert _score(client, headers, "C100341").status_code == 403  # behaviour 13

    assert caplog.records
    assert not [r for r in caplog.records if "C10034" in r.getMessage()]


def test_a_purged_decision_is_gone_not_unknown(served) -> None:  # type: ignore[no-untyped-def]
    svc, client, _ = served
    headers = _token(svc, client, "farmer-app")
    _grant(client, headers, "C100350")
    decision = _score(client, headers, "C100350").json()["evidence_id"]
    index = int(decision.split("-")[1])
    ledger = svc.state.consent.ledger
    # What `fedrisk ledger purge` does five years on, here for this one decision only.
    ledger.purge([index], {"policy": "a test of the retention rule"})

    for answer in (
        client.get(f"/v1/evidence/{decision}", headers=headers),
        client.post(f"/v1/evidence/{decision}/review", headers=headers),
    ):
        assert answer.status_code == 410 and answer.json()["detail"]["reason"] == "purged"
    assert client.get(f"/v1/evidence/ev-{index}-{'0' * 16}", headers=headers).status_code == 404
    assert ledger.verify().ok
