"""A trained vertical model, its parties' services and the coordinator's API, in process.

The participants' FastAPI apps are reached through httpx's ASGI transport (no sockets):
the real apps, the real HTTP requests and responses, only the wire replaced. The benchmark
(`bench/serving.py`) runs the same apps as separate processes on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from consent.assertions import AssertionSigner, AssertionVerifier
from coordinator.publish import publish
from coordinator.rounds import FederationResult
from coordinator.serving.app import create_app
from coordinator.serving.fanout import FanOut
from coordinator.serving.service import ServingState
from coordinator.serving.settings import ServeSettings
from coordinator.vertical import run_vertical
from models.federation import FederationSpec, load_federation
from models.registry import ModelRegistry
from participants.client_app import make_client_app
from participants.serving.app import create_participant_app
from participants.serving.node import node_parts
from tests.support.local_grid import LocalGrid

MODEL = "serving-test"
INSTITUTION = "demo-bank"


def write_vertical_federation(folder: Path) -> Path:
    """Guest rows C100000..C100449 (labels, 3 features), host C100050..C100499 (4)."""
    rng = np.random.default_rng(0)
    n = 500
    xg, xh = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    logit = 1.2 * xg[:, 0] - 0.8 * xg[:, 1] + 1.5 * xh[:, 0] - 1.0 * xh[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"C{100000 + i}" for i in range(n)]
    pd.DataFrame({"cid": ids, "default": y, **{f"g{j}": xg[:, j] for j in range(3)}}).iloc[
        :450
    ].to_csv(folder / "bank.csv", index=False)
    pd.DataFrame({"customer": ids, **{f"h{j}": xh[:, j] for j in range(4)}}).iloc[50:].to_csv(
        folder / "gov.csv", index=False
    )

    def features(prefix: str, k: int) -> str:
        return ", ".join(
            f'{{ name = "{prefix}{j}", type = "float", min = -100.0, max = 100.0 }}'
            for j in range(k)
        )

    path = folder / "federation.toml"
    path.write_text(
        f"""
[federation]
name = "{MODEL}"
model = "logistic"
mode = "vertical"
privacy = "none"
rounds = 3
batch_size = 128
learning_rate = 0.3
seed = 3

[[participants]]
name = "bank"
file = "bank.csv"
categories = ["bank.loans"]
schema = {{ id = "cid", label = "default", features = [{features("g", 3)}] }}

[[participants]]
name = "gov"
file = "gov.csv"
categories = ["gov.agri"]
schema = {{ id = "customer", features = [{features("h", 4)}] }}
""",
        encoding="utf-8",
    )
    return path


def train_and_publish(folder: Path) -> FederationSpec:
    return publish_vertical(load_federation(write_vertical_federation(folder)))


def publish_vertical(spec: FederationSpec) -> FederationSpec:
    """Train a vertical federation on an in-process grid and publish it to its registry."""
    grid = LocalGrid(make_client_app(spec.path), n_nodes=len(spec.participants))
    run = run_vertical(grid, spec, connect_timeout_s=5)  # type: ignore[arg-type]
    publish(
        spec,
        FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        ),
        report_path=None,
    )
    return spec


@dataclass
class Service:
    """The coordinator's app with its state, the spec, and the signer's key."""

    state: ServingState
    spec: FederationSpec
    app: object
    #: (participant host, request body) of every call the coordinator made.
    calls: list[tuple[str, bytes]]


def service(folder: Path, spec: FederationSpec) -> Service:
    """The coordinator's API over the published model, its participants in process."""
    registry = ModelRegistry(spec.output_dir / "registry")
    state_dir = folder / "coordinator"
    signer = AssertionSigner.in_folder(state_dir)
    apps = {}
    for party in (p.name for p in spec.participants):
        parts = node_parts(registry, [spec.path], party=party)
        verifier = AssertionVerifier(signer.public_key, audience=party)
        apps[party] = create_participant_app(party=party, parts=parts, verifier=verifier)
    settings = ServeSettings(
        state_dir=state_dir,
        registry=spec.output_dir / "registry",
        participants={p: f"http://{p}.node" for p in apps},
    )
    state = ServingState.from_settings(settings)
    transports = {f"{p}.node": httpx.ASGITransport(app=a) for p, a in apps.items()}
    calls: list[tuple[str, bytes]] = []

    async def record(request: httpx.Request) -> None:
        calls.append((request.url.host, request.content))

    client = httpx.AsyncClient(
        mounts={f"http://{host}": t for host, t in transports.items()},
        timeout=10.0,
        event_hooks={"request": [record]},
    )
    state.fanout = FanOut(settings.participants, signer=signer, client=client)
    return Service(state=state, spec=spec, app=create_app(state), calls=calls)


def grant_body(subject: str, *, categories: list[str], days: int = 365) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "subject_id": subject,
        "purpose": "credit_scoring",
        "categories": categories,
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "expires_at": (now + timedelta(days=days)).isoformat(),
        "evidence_hash": "ab" * 32,
        "channel": "branch",
    }
