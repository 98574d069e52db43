"""A participant that is down, slow or broken makes the scoring API answer 503 naming it and
the reason, within the participant timeout, never a score from the parties that did answer.

Real sockets on the participants' side: each participant's FastAPI app runs under uvicorn on
127.0.0.1 behind a :class:`Front`, a raw asyncio TCP server that passes the bytes through or
misbehaves on demand (closed port, silence, a trickle, a body cut off, 500, not JSON). The
coordinator calls them over FanOut's real aiohttp path; only the coordinator's own API is
driven in process (TestClient).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

import coordinator.serving.scoring
from consent.assertions import AssertionSigner, AssertionVerifier
from coordinator.publish import publish
from coordinator.rounds import run_federation
from coordinator.serving.fanout import FanOut
from models.federation import FederationSpec, load_federation
from models.registry import ModelRegistry
from participants.client_app import make_client_app
from participants.serving.app import create_participant_app
from participants.serving.node import node_parts
from tests.support.builders import make_federation
from tests.support.local_grid import LocalGrid
from tests.support.serving import (
    INSTITUTION,
    MODEL,
    Service,
    grant_body,
    service,
    train_and_publish,
)

HORIZONTAL = "iot-faults-test"
TIMEOUT_S = 1.0
#: A correctness bound, not a benchmark: the answer comes near TIMEOUT_S, never unbounded.
BOUND_S = 4.0
SUBJECT = "C100100"  # held by both vertical parties
PORTFOLIO = [f"C1001{k:02d}" for k in range(10)]


# --- real servers on loopback ------------------------------------------------------------


class Loop:
    """An asyncio event loop in a daemon thread, for the fronts."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class Front:
    """127.0.0.1:``port`` in front of a participant's service on ``upstream``: ``mode`` is
    ``pass``, ``delay`` (accept, wait ``delay_s``, then pass), ``down`` (port closed),
    ``silent`` (read the request, never answer), ``trickle`` (headers, then a byte every
    0.2 s), ``hang_mid_body`` / ``close_mid_body`` (half a body, then silence / close),
    ``error`` (500), ``garbage`` (200, not JSON) or ``malformed`` (200, ``body``)."""

    loop: Loop
    upstream: int
    port: int = 0
    mode: str = "pass"
    delay_s: float = 0.0
    body: bytes = b"{}"
    _server: asyncio.Server | None = None
    _live: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, *, delay_s: float = 0.0, body: bytes = b"{}") -> None:
        """Switch mode; connections open now are closed (a node that fails loses them)."""
        self.mode, self.delay_s, self.body = mode, delay_s, body
        self.loop.run(self._apply())

    async def _apply(self) -> None:
        for writer in list(self._live):
            writer.close()
        self._live.clear()
        if self.mode == "down" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif self.mode != "down" and self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._live.add(writer)
        mode = self.mode
        try:
            if mode in ("pass", "delay"):
                await asyncio.sleep(self.delay_s if mode == "delay" else 0.0)
                await self._pipe(reader, writer)
                return
            await _read_request(reader)
            await self._misbehave(mode, reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._live.discard(writer)
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self._live.add(up_writer)
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            self._live.discard(up_writer)
            up_writer.close()

    async def _misbehave(
        self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if mode == "trickle":
            writer.write(_head(200, "application/json", 100_000))
            while not writer.is_closing():
                writer.write(b" ")  # JSON whitespace: every read gets a byte in time
                await writer.drain()
                await asyncio.sleep(0.2)
            return
        if mode in ("hang_mid_body", "close_mid_body"):
            writer.write(_head(200, "application/json", 1_000) + b'{"party": "')
            await writer.drain()
            if mode == "close_mid_body":
                return
        if mode in ("error", "garbage", "malformed"):
            status, kind, body = {
                "error": (500, "application/json", b'{"detail": "internal error"}'),
                "garbage": (200, "text/html", b"<html><body>Bad gateway</body></html>"),
                "malformed": (200, "application/json", self.body),
            }[mode]
            writer.write(_head(status, kind, len(body)) + body)
            await writer.drain()
            return
        while await reader.read(65_536):  # silent (and hang_mid_body): until the caller goes
            pass


def _head(status: int, content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            await reader.readexactly(int(value))


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65_536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


class Uvicorn:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        config.lifespan = "off"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.port: int = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- a federation whose participants sit behind fronts ------------------------------------


@dataclass
class Federation:
    svc: Service
    client: TestClient
    signer: AssertionSigner
    fronts: dict[str, Front]
    headers: dict[str, str]
    model: str

    def fresh(self, *, timeout_s: float = TIMEOUT_S) -> None:
        """Every front passing, and a new real-socket fan-out (no pooled connection, no
        directory) with ``timeout_s``."""
        for front in self.fronts.values():
            front.set("pass")
        old = self.svc.state.fanout
        self.svc.state.fanout = FanOut(
            {p: f.url for p, f in self.fronts.items()}, signer=self.signer, timeout_s=timeout_s
        )
        assert self.client.portal is not None
        self.client.portal.call(old.close)

    def score(self, subject: str) -> tuple[Any, float]:
        started = time.monotonic()
        answer = self.client.post(
            f"/v1/models/{self.model}/score", json={"subject_id": subject}, headers=self.headers
        )
        return answer, time.monotonic() - started

    def batch(self, subjects: list[str]) -> tuple[Any, float]:
        started = time.monotonic()
        answer = self.client.post(
            f"/v1/models/{self.model}/score/batch",
            json={"subject_ids": subjects},
            headers=self.headers,
        )
        return answer, time.monotonic() - started

    def scored(self) -> float:
        value = self.svc.state.metrics.registry.get_sample_value(
            "fedrisk_scoring_decisions_total", {"model": self.model, "outcome": "scored"}
        )
        return value or 0.0

    def unavailable(self, route: str) -> float:
        value = self.svc.state.metrics.registry.get_sample_value(
            "fedrisk_requests_total", {"route": f"/v1/models/{{model}}/{route}", "status": "503"}
        )
        return value or 0.0


def _federation(
    folder: Path, spec: FederationSpec, loop: Loop, *, categories: list[str], subjects: list[str]
) -> Iterator[Federation]:
    """The coordinator's API over ``spec``; each participant's app under uvicorn behind a
    front; an app token and a grant for every subject in ``subjects``."""
    svc = service(folder, spec)
    signer = AssertionSigner.in_folder(folder / "coordinator")
    registry = ModelRegistry(spec.output_dir / "registry")
    servers, fronts = [], {}
    for party in (p.name for p in spec.participants):
        app = create_participant_app(
            party=party,
            parts=node_parts(registry, [spec.path], party=party),
            verifier=AssertionVerifier(signer.public_key, audience=party),
        )
        servers.append(Uvicorn(app))
        fronts[party] = Front(loop, upstream=servers[-1].port)
    secret = svc.state.apps.add(
        "lender",
        institution=INSTITUTION,
        scopes=[f"score:{spec.name}", "consent:write"],
        rate_per_s=1000,
        burst=1000,
    )
    try:
        with TestClient(svc.app) as client:  # type: ignore[arg-type]
            form = {"grant_type": "client_credentials", "client_id": "lender"}
            token = client.post("/v1/oauth/token", data={**form, "client_secret": secret})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for subject in subjects:
                body = grant_body(subject, categories=categories)
                assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
            yield Federation(svc, client, signer, fronts, headers, spec.name)
    finally:
        for front in fronts.values():
            front.set("down")
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One node home for both federations of this module (their parts live there)."""
    folder = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDRISK_HOME", str(folder / "home"))
    yield folder
    mp.undo()


@pytest.fixture(autouse=True)
def node_home() -> None:
    """The module's registry and parts live in the module's node home: keep it."""


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def vertical(home: Path, loop: Loop) -> Iterator[Federation]:
    folder = home / "vertical"
    folder.mkdir()
    spec = train_and_publish(folder)
    yield from _federation(
        folder, spec, loop, categories=["bank.loans", "gov.agri"], subjects=PORTFOLIO
    )


@pytest.fixture(scope="module")
def horizontal(home: Path, loop: Loop) -> Iterator[Federation]:
    folder = home / "horizontal"
    folder.mkdir()
    path = make_federation(folder, participants=2, rows=200, rounds=2, name=HORIZONTAL)
    text = path.read_text(encoding="utf-8")
    for i in (1, 2):
        text = text.replace(
            f'file = "p{i}.csv"\n', f'file = "p{i}.csv"\ncategories = ["iot.energy"]\n'
        )
    path.write_text(text, encoding="utf-8")
    spec = load_federation(path)
    grid = LocalGrid(make_client_app(spec.path), n_nodes=2)
    publish(spec, run_federation(grid, spec, connect_timeout_s=5), report_path=None)  # type: ignore[arg-type]
    subjects = [_subject_of(spec, node, row) for node in ("p1", "p2") for row in (3, 7)]
    yield from _federation(folder, spec, loop, categories=["iot.energy"], subjects=subjects)


def _subject_of(spec: FederationSpec, node: str, row: int) -> str:
    return str(pd.read_csv(spec.path.parent / f"{node}.csv").iloc[row, 0])


def _assert_unavailable(answer: Any, elapsed_s: float, *, party: str, cause: str) -> str:
    """503 naming ``party`` with ``cause``, a Retry-After, within the bound; the message."""
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    detail = answer.json()["detail"]
    assert detail["reason"] == "participant_unavailable"
    assert (detail["party"], detail["cause"]) == (party, cause)
    assert elapsed_s < BOUND_S, f"answered after {elapsed_s:.1f} s"
    assert "score" not in answer.json() and "results" not in answer.json()
    return str(detail["message"])


# --- vertical: every party is needed for a score -------------------------------------------


def test_everyone_answering_over_real_sockets_gives_the_in_process_score(
    vertical: Federation,
) -> None:
    in_process, _ = vertical.score(SUBJECT)  # the ASGI-transport fan-out of tests.support
    vertical.fresh()

    answer, _ = vertical.score(SUBJECT)

    assert answer.status_code == 200, answer.text
    assert answer.json()["score"] == pytest.approx(in_process.json()["score"], abs=1e-12)


MALFORMED = {"party": "bank", "output_kind": "logit", "outputs": {}, "missing": []}


@pytest.mark.parametrize(
    ("party", "mode", "cause", "words"),
    [
        ("gov", "down", "refused", "gov refused the connection"),
        ("bank", "silent", "timeout", "bank did not answer within 1.0 s"),
        ("gov", "trickle", "timeout", "gov did not answer within 1.0 s"),
        ("bank", "hang_mid_body", "timeout", "bank did not answer within 1.0 s"),
        ("gov", "close_mid_body", "disconnected", "gov closed the connection mid-answer"),
        ("bank", "error", "error", "bank answered HTTP 500"),
        ("gov", "garbage", "invalid", "gov answered something other than JSON"),
        ("bank", "malformed", "invalid", "bank left 1 subject(s) unanswered"),
    ],
)
def test_one_party_failing_gives_503_naming_it_and_no_partial_score(
    vertical: Federation,
    caplog: pytest.LogCaptureFixture,
    party: str,
    mode: str,
    cause: str,
    words: str,
) -> None:
    vertical.fresh()
    version = vertical.svc.state.catalog.models[MODEL].version
    vertical.fronts[party].set(mode, body=json.dumps({**MALFORMED, "version": version}).encode())
    ledger, scored = vertical.svc.state.consent.ledger.size, vertical.scored()
    unavailable = vertical.unavailable("score")

    with caplog.at_level(logging.WARNING, logger="coordinator.serving.fanout"):
        answer, elapsed_s = vertical.score(SUBJECT)

    message = _assert_unavailable(answer, elapsed_s, party=party, cause=cause)
    assert message.startswith(words) and "no score was computed" in message
    assert vertical.svc.state.consent.ledger.size == ledger and vertical.scored() == scored
    assert vertical.unavailable("score") == unavailable + 1
    assert any(r.getMessage().startswith(f"{party} /v1/partial/") for r in caplog.records)


def test_parties_are_asked_in_parallel_within_one_deadline(vertical: Federation) -> None:
    # Each party takes 0.9 s: together 1.8 s, past the 1.5 s deadline; in parallel, 0.9 s.
    vertical.fresh(timeout_s=1.5)
    for front in vertical.fronts.values():
        front.set("delay", delay_s=0.9)

    answer, _ = vertical.score(SUBJECT)

    assert answer.status_code == 200, answer.text


def test_every_party_silent_still_fails_within_one_timeout(vertical: Federation) -> None:
    vertical.fresh()
    for front in vertical.fronts.values():
        front.set("silent")

    answer, elapsed_s = vertical.score(SUBJECT)

    _assert_unavailable(answer, elapsed_s, party="bank", cause="timeout")


def test_a_batch_fails_whole_when_a_party_is_slow(
    vertical: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordinator.serving.scoring, "CHUNK", 2)  # five chunks, four at once
    vertical.fresh()
    answered, _ = vertical.batch(PORTFOLIO)
    assert answered.status_code == 200 and len(answered.json()["results"]) == len(PORTFOLIO)
    vertical.fronts["gov"].set("silent")
    ledger = vertical.svc.state.consent.ledger.size

    answer, elapsed_s = vertical.batch(PORTFOLIO)

    _assert_unavailable(answer, elapsed_s, party="gov", cause="timeout")
    assert vertical.svc.state.consent.ledger.size == ledger


# --- horizontal: the node holding the subject is needed --------------------------------------


def test_a_horizontal_subject_is_scored_over_real_sockets(horizontal: Federation) -> None:
    subject = _subject_of(horizontal.svc.spec, "p2", 7)
    in_process, _ = horizontal.score(subject)
    horizontal.fresh()

    answer, _ = horizontal.score(subject)

    assert answer.status_code == 200, answer.text
    assert answer.json()["score"] == pytest.approx(in_process.json()["score"], abs=1e-12)


def test_the_holding_node_going_silent_gives_503_not_a_score(horizontal: Federation) -> None:
    subject = _subject_of(horizontal.svc.spec, "p2", 7)
    horizontal.fresh()
    assert horizontal.score(subject)[0].status_code == 200  # the directory knows p2 holds it
    horizontal.fronts["p2"].set("silent")

    answer, elapsed_s = horizontal.score(subject)

    message = _assert_unavailable(answer, elapsed_s, party="p2", cause="timeout")
    assert message.startswith("p2 did not answer within 1.0 s")


@pytest.mark.parametrize(("mode", "cause"), [("down", "refused"), ("silent", "timeout")])
def test_a_node_failing_before_the_directory_is_built_is_named_not_unknown(
    horizontal: Federation, mode: str, cause: str
) -> None:
    horizontal.fresh()
    horizontal.fronts["p2"].set(mode)

    answer, elapsed_s = horizontal.score(_subject_of(horizontal.svc.spec, "p2", 7))

    # Not 404 unknown_subject: the subject may well be the silent node's.
    _assert_unavailable(answer, elapsed_s, party="p2", cause=cause)
    # The other node still scores its own subjects (each score is whole at one node).
    assert horizontal.score(_subject_of(horizontal.svc.spec, "p1", 3))[0].status_code == 200


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_horizontal_batch_fails_whole_instead_of_partial_results(
    horizontal: Federation, when: str
) -> None:
    subjects = [_subject_of(horizontal.svc.spec, n, row) for n in ("p1", "p2") for row in (3, 7)]
    horizontal.fresh()
    if when == "after":  # the directory is built while both answer
        answered, _ = horizontal.batch(subjects)
        assert answered.status_code == 200 and len(answered.json()["results"]) == len(subjects)
    horizontal.fronts["p2"].set("silent")

    answer, elapsed_s = horizontal.batch(subjects)

    _assert_unavailable(answer, elapsed_s, party="p2", cause="timeout")
