"""A horizontal model is scored whole at the one node holding the subject; the other nodes
never see the subject's id."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from coordinator.publish import publish
from coordinator.rounds import run_federation
from models.federation import load_federation
from models.onnx_export import OnnxModel
from models.registry import ModelRegistry
from participants.client_app import make_client_app
from tests.support.builders import make_federation
from tests.support.local_grid import LocalGrid
from tests.support.serving import INSTITUTION, Service, grant_body, service

MODEL = "iot-serving-test"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, TestClient]]:
    folder = tmp_path_factory.mktemp("horizontal")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDRISK_HOME", str(folder / "home"))
    path = make_federation(folder, participants=2, rows=200, rounds=2, name=MODEL)
    text = path.read_text(encoding="utf-8")
    for i in (1, 2):
        text = text.replace(
            f'file = "p{i}.csv"\n', f'file = "p{i}.csv"\ncategories = ["iot.energy"]\n'
        )
    path.write_text(text, encoding="utf-8")
    spec = load_federation(path)
    grid = LocalGrid(make_client_app(spec.path), n_nodes=2)
    publish(spec, run_federation(grid, spec, connect_timeout_s=5), report_path=None)  # type: ignore[arg-type]
    svc = service(folder, spec)
    with TestClient(svc.app) as client:  # type: ignore[arg-type]
        yield svc, client
    mp.undo()


@pytest.fixture(autouse=True)
def node_home() -> None:
    """The module's registry and parts live in the module's node home."""


def test_the_node_holding_the_subject_scores_it_and_no_other_node_sees_its_id(served) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    secret = svc.state.apps.add(
        "factory-lender", institution=INSTITUTION, scopes=[f"score:{MODEL}", "consent:write"]
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": "factory-lender",
        "client_secret": secret,
    }
    token = client.post("/v1/oauth/token", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    table = pd.read_csv(svc.spec.path.parent / "p2.csv")
    subject = str(table.iloc[7, 0])
    assert (
        client.post(
            "/v1/consents", headers=headers, json=grant_body(subject, categories=["iot.energy"])
        ).status_code
        == 201
    )

    answer = client.post(f"/v1/models/{MODEL}/score", json={"subject_id": subject}, headers=headers)

    assert answer.status_code == 200, answer.text
    registered = ModelRegistry(svc.spec.output_dir / "registry").latest(MODEL)
    names = [f["name"] for f in registered.card.schema["features"]]
    expected = OnnxModel(registered.onnx_path).predict(table.iloc[[7]][names].to_numpy())
    assert answer.json()["score"] == pytest.approx(float(expected[0]), abs=1e-6)
    scored_at = {host for host, body in svc.calls if subject.encode() in body}
    assert scored_at == {"p2.node"}

    unknown = client.post(
        f"/v1/models/{MODEL}/score", json={"subject_id": "NOBODY"}, headers=headers
    )
    assert unknown.status_code == 403  # no consent: refused before any node is asked
