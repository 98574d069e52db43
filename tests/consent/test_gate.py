"""The consent gate fails closed: when the store cannot answer, the call is refused with 503,
the route (and so the model) never runs, and nothing is recorded as a decision."""

# No postponed annotations: FastAPI reads the route's signature, which names a local.
import sqlite3
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from consent.deps import ConsentedSubjects, ConsentGate, ScoringAsk
from consent.receipts import Controller
from consent.registry import ConsentRegistry
from consent.store import SQLiteConsentStore
from tests.consent.builders import T0, add_grant

BANK = Controller(name="Bank", contact="DPO", email="dpo@bank.example")


def _app(registry: ConsentRegistry, ran: list[str], refusals: list[str]) -> FastAPI:
    async def ask(subject: str) -> ScoringAsk:
        return ScoringAsk(
            app="app-1",
            institution="bank",
            model="m",
            categories=frozenset({"bank.transactions"}),
            subject_ids=(subject,),
        )

    gate = ConsentGate(
        ask=ask,
        registry=lambda: registry,
        on_refusal=lambda _ask, subject, _decision: refusals.append(subject),
        clock=lambda: T0.replace(month=6),
    )
    app = FastAPI()

    @app.post("/score")
    async def score(
        consented: Annotated[ConsentedSubjects, Depends(gate.single)],
    ) -> dict[str, str]:
        ran.extend(consented.grants)
        return consented.grants

    return app


def test_a_store_that_cannot_answer_refuses_with_503(tmp_path: Path) -> None:
    store = SQLiteConsentStore(tmp_path / "consent.db")
    registry = ConsentRegistry.in_folder(tmp_path, controller=BANK, store=store)
    add_grant(store, "S1", purpose="credit_scoring")
    ran: list[str] = []
    refusals: list[str] = []
    client = TestClient(_app(registry, ran, refusals))
    assert client.post("/score", params={"subject": "S1"}).status_code == 200
    assert client.post("/score", params={"subject": "S2"}).status_code == 403
    assert (ran, refusals) == (["S1"], ["S2"])

    with sqlite3.connect(tmp_path / "consent.db") as db:  # the database loses its log
        db.execute("DROP TABLE consent_events")
    answer = client.post("/score", params={"subject": "S1"})

    assert answer.status_code == 503
    assert answer.json()["detail"]["reason"] == "consent_unavailable"
    assert (ran, refusals) == (["S1"], ["S2"])
