"""Post-loan alerts at the coordinator: a factory node's change event through the real API
to the ledger and the lender's signed webhook; refused without consent or a loan, once per
event, only to its own institution."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordinator.monitoring.loans import Loan, LoanBook, read_loans
from coordinator.monitoring.receiver import WebhookReceiver
from coordinator.serving.apps import AppRegistry
from coordinator.serving.loopback import serve_on_loopback
from coordinator.serving.service import ServingState
from coordinator.serving.settings import ServeSettings
from models.errors import DataError
from models.specs import MODEL_SPECS
from tests.support.serving import grant_body

BANK = "demo-bank"
FACTORY = "factory-001"
SUBJECT = "91330100MA27XYZ12A"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path / "root"
    settings = ServeSettings.for_root(root)
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True)
    apps = AppRegistry(state_dir / "apps.json")
    secrets = {
        "node": apps.add(FACTORY, institution=FACTORY, scopes=["monitoring:report"]),
        "other-node": apps.add(
            "factory-002", institution="factory-002", scopes=["monitoring:report"]
        ),
        "lender": apps.add(
            "lender-app", institution=BANK, scopes=["alerts:read", "alerts:write", "consent:write"]
        ),
        "other-lender": apps.add("other-app", institution="other-bank", scopes=["alerts:read"]),
    }
    book = LoanBook(state_dir / "monitoring.sqlite")
    book.put([Loan("L-1", SUBJECT, FACTORY, BANK, date(2025, 1, 1))])
    book.close()
    state = ServingState.from_settings(settings)
    with WebhookReceiver() as hook, serve_on_loopback(state) as url:
        client = httpx.Client(base_url=url, timeout=10)
        yield {"client": client, "secrets": secrets, "hook": hook, "state": state}
        client.close()


def _token(world: dict[str, Any], client_id: str, who: str) -> dict[str, str]:
    answer = world["client"].post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, world["secrets"][who]),
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _event(**changes: Any) -> dict[str, Any]:
    body = {
        "event_id": "a1b2c3d4e5f60718",
        "factory": FACTORY,
        "subject_id": SUBJECT,
        "indicator": "energy",
        "detector": "PageHinkley",
        "detected_at": "2025-06-09T00:00:00",
        "since": "2025-05-31",
        "before": 2551.7,
        "after": 1448.2,
        "change": -0.4325,
        "unit": "kWh a day",
        "text": "Energy use fell 43% since 2025-05-31: from 2,551.7 to 1,448.2 kWh a day",
    }
    return body | changes


def _grant(world: dict[str, Any]) -> str:
    categories = sorted(MODEL_SPECS["iot_risk"].data_categories)
    answer = world["client"].post(
        "/v1/consents",
        json=grant_body(SUBJECT, categories=categories),
        headers=_token(world, "lender-app", "lender"),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["grant_id"])


def _set_hook(world: dict[str, Any]) -> None:
    hook = world["hook"]
    answer = world["client"].put(
        "/v1/webhook",
        json={"url": hook.url},
        headers=_token(world, "lender-app", "lender"),
    )
    assert answer.status_code == 200, answer.text
    hook.secret = answer.json()["secret"]


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_event_becomes_an_alert_in_the_ledger_and_at_the_webhook(world: dict[str, Any]) -> None:
    _grant(world)
    _set_hook(world)
    node = _token(world, FACTORY, "node")
    answer = world["client"].post("/v1/monitoring/events", json=_event(), headers=node)
    assert answer.status_code == 201, answer.text
    alert = answer.json()
    assert alert["loan_id"] == "L-1" and alert["change"] == -0.4325
    entry = world["state"].consent.ledger.find(alert["alert_id"])
    assert entry.body["kind"] == "monitoring_alert" and entry.body["indicator"] == "energy"
    assert SUBJECT not in json.dumps(entry.body)  # the ledger holds the pseudonym only
    hook = world["hook"]
    _wait(lambda: hook.received)
    (delivered,) = hook.received
    assert delivered["type"] == "monitoring.alert"
    assert delivered["data"]["alert_id"] == alert["alert_id"]
    again = world["client"].post("/v1/monitoring/events", json=_event(), headers=node)
    assert again.status_code == 200 and again.json()["alert_id"] == alert["alert_id"]
    time.sleep(0.3)
    assert len(hook.received) == 1  # sent once
    lender = _token(world, "lender-app", "lender")
    listed = world["client"].get("/v1/alerts", headers=lender).json()
    assert [a["alert_id"] for a in listed["alerts"]] == [alert["alert_id"]]
    other = _token(world, "other-app", "other-lender")
    assert world["client"].get("/v1/alerts", headers=other).json()["alerts"] == []
    path = f"/v1/alerts/{alert['alert_id']}"
    assert world["client"].get(path, headers=other).status_code == 404


def test_a_failing_webhook_is_retried_until_it_takes_the_alert(world: dict[str, Any]) -> None:
    _grant(world)
    _set_hook(world)
    hook = world["hook"]
    hook.answers = [503]
    node = _token(world, FACTORY, "node")
    answer = world["client"].post("/v1/monitoring/events", json=_event(), headers=node)
    assert answer.status_code == 201
    _wait(lambda: hook.received, timeout=15)  # the first retry waits 0.5 to 1 s
    outbox = world["state"].monitoring.outbox
    (delivery,) = outbox.deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 2


def test_consent_withdrawn_mid_loan_stops_alerts(world: dict[str, Any]) -> None:
    grant = _grant(world)
    _set_hook(world)
    lender = _token(world, "lender-app", "lender")
    answer = world["client"].post(f"/v1/consents/{grant}/withdraw", headers=lender)
    assert answer.status_code == 200, answer.text
    node = _token(world, FACTORY, "node")
    refused = world["client"].post("/v1/monitoring/events", json=_event(), headers=node)
    assert refused.status_code == 403
    assert refused.json()["detail"]["reason"] == "withdrawn"
    time.sleep(0.3)
    assert world["hook"].received == []
    assert world["client"].get("/v1/alerts", headers=lender).json()["alerts"] == []


def test_events_without_a_loan_or_for_another_factory_are_refused(world: dict[str, Any]) -> None:
    _grant(world)
    node = _token(world, FACTORY, "node")
    late = _event(detected_at="2024-06-01T00:00:00", event_id="ffff0000ffff0000")
    answer = world["client"].post("/v1/monitoring/events", json=late, headers=node)
    assert answer.status_code == 404 and answer.json()["detail"]["reason"] == "no_loan"
    stranger = _event(subject_id="91110000000000000X", event_id="eeee0000eeee0000")
    answer = world["client"].post("/v1/monitoring/events", json=stranger, headers=node)
    assert answer.status_code == 404  # another firm at the same node has no loan
    other = _token(world, "factory-002", "other-node")
    answer = world["client"].post("/v1/monitoring/events", json=_event(), headers=other)
    assert answer.status_code == 403 and answer.json()["detail"]["reason"] == "not_your_factory"
    lender = _token(world, "lender-app", "lender")
    answer = world["client"].post("/v1/monitoring/events", json=_event(), headers=lender)
    assert answer.status_code == 403  # a lender's app cannot report events
    bad = _event(before="lots")
    answer = world["client"].post("/v1/monitoring/events", json=bad, headers=node)
    assert answer.status_code == 422


def test_a_bad_loans_file_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    path.write_text(
        "loan_id,subject_id,factory,institution,opened_on\n"
        "L-1,S,F,B,2025-01-01\nL-2,S,F,B,01/02/2025\n"
    )
    with pytest.raises(DataError, match=r"loans.csv.*row 3.*opened_on"):
        read_loans(path)
    path.write_text("loan_id,subject_id,factory,institution\nL-1,S,F,B\n")
    with pytest.raises(DataError, match="opened_on"):
        read_loans(path)
    path.write_text(
        "loan_id,subject_id,factory,institution,opened_on\nL-1,S,F,B,2025-01-01\n"
        "L-1,S,F,B,2025-01-02\n"
    )
    with pytest.raises(DataError, match=r"row 3.*loan_id.*twice"):
        read_loans(path)


def test_a_closed_loan_gets_no_alert(tmp_path: Path) -> None:
    book = LoanBook(tmp_path / "m.sqlite")
    book.put([Loan("L-1", "S", "F", "B", date(2025, 1, 1), date(2025, 3, 1))])
    assert book.open_loan("F", "S", date(2025, 2, 1)) is not None
    assert book.open_loan("F", "S", date(2025, 3, 2)) is None
    assert book.open_loan("G", "S", date(2025, 2, 1)) is None
    assert book.open_loan("F", "T", date(2025, 2, 1)) is None  # another firm at the node


def test_the_loan_book_command_imports_all_or_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    good = tmp_path / "loans.csv"
    good.write_text(
        "loan_id,subject_id,factory,institution,opened_on,closed_on\n"
        "L-1,S1,factory-001,demo-bank,2025-01-01,\nL-2,S2,factory-002,demo-bank,2025-02-01,"
        "2026-02-01\n"
    )
    command = [sys.executable, "-m", "fedrisk", "monitor", "loans", "--root", str(tmp_path)]
    done = subprocess.run([*command, str(good)], capture_output=True, text=True, check=True)
    assert "2 loans imported" in done.stderr and "factory-002" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("loan_id,subject_id,factory,institution,opened_on\nL-3,S3,f,b,yesterday\n")
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1 and "row 2" in failed.stderr and "opened_on" in failed.stderr
    book = LoanBook(tmp_path / "serving" / "monitoring.sqlite")
    assert [loan.loan_id for loan in book.loans()] == ["L-1", "L-2"]
    alerts = subprocess.run(
        [sys.executable, "-m", "fedrisk", "monitor", "alerts", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "alert" in alerts.stdout
