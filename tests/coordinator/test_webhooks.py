"""Signed webhook delivery: Standard Webhooks signatures, the durable outbox, retries.

Every delivery goes over real HTTP to an aiohttp receiver on 127.0.0.1 that checks each
request with :func:`verify` and answers from a script. Retry timing runs on a controllable
clock (the receiver checks timestamps against the same clock); ``run`` and ``notify`` on the
real one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from coordinator.monitoring.webhooks import (
    NO_ENDPOINT,
    Deliverer,
    Outbox,
    WebhookConfigError,
    WebhookSignatureError,
    new_secret,
    sign,
    verify,
)

LENDER = "northbank"
ALERT = "monitoring.alert"
PAYLOAD = {"loan": "L-17", "indicator": "energy_drop", "severity": "high", "value": 0.42}

# The Standard Webhooks specification's published test vector (its reference libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class Clock:
    """Unix time that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A lender's endpoint: verifies each request with ``secret`` (401 when it fails),
    records it, then answers ``(status, headers)`` from ``answers`` in turn, then 200."""

    secret: str
    clock: Callable[[], float] = time.time
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    arrivals: asyncio.Queue[float] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(secret=self.secret, headers=request.headers, body=body, now=self.clock())
        except WebhookSignatureError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=401)
        self.received.append((dict(request.headers), body))
        self.arrivals.put_nowait(time.perf_counter())
        await asyncio.sleep(self.delay_s)
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.Response(status=status, headers=headers)


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    """``receiver`` on a free loopback port; its URL."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def enqueue(outbox: Outbox, message_id: str = "msg_1", institution: str = LENDER) -> bool:
    return outbox.enqueue(
        institution=institution, event_type=ALERT, payload=PAYLOAD, message_id=message_id
    )


def spec_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    return {**headers, **overrides}


# --- signatures ---------------------------------------------------------------------------


def test_sign_reproduces_the_specifications_test_vector() -> None:
    signature = sign(
        secret=SPEC_SECRET, message_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
    )

    assert signature == SPEC_SIGNATURE


def test_sign_agrees_with_hmac_computed_directly() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"data":{"x":1},"id":"msg_2"}'
    digest = hmac.new(key, b"msg_2.1700000000." + body, hashlib.sha256).digest()

    signature = sign(secret=secret, message_id="msg_2", timestamp=1_700_000_000, body=body)

    assert signature == "v1," + base64.b64encode(digest).decode()


def test_verify_accepts_the_vector_and_one_good_signature_among_several() -> None:
    rotated = spec_headers(**{"webhook-signature": f"v1,bm9wZQ== {SPEC_SIGNATURE} v2,abc"})
    capitalised = {name.title(): value for name, value in spec_headers().items()}

    for headers in (spec_headers(), rotated, capitalised):
        verify(secret=SPEC_SECRET, headers=headers, body=SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    ("case", "headers", "body", "now", "match"),
    [
        ("tampered body", spec_headers(), b'{"test": 2432232315}', SPEC_TIMESTAMP, "no v1"),
        ("old timestamp", spec_headers(), SPEC_BODY, SPEC_TIMESTAMP + 301, "beyond"),
        ("future timestamp", spec_headers(), SPEC_BODY, SPEC_TIMESTAMP - 301, "beyond"),
        ("other id", spec_headers(**{"webhook-id": "msg_x"}), SPEC_BODY, SPEC_TIMESTAMP, "no v1"),
        ("v2 only", spec_headers(**{"webhook-signature": "v2" + SPEC_SIGNATURE[2:]}),
         SPEC_BODY, SPEC_TIMESTAMP, "no v1"),
        ("not seconds", spec_headers(**{"webhook-timestamp": "1_614_265_330"}), SPEC_BODY,
         SPEC_TIMESTAMP, "unix seconds"),
        ("no id", {"webhook-timestamp": "1614265330", "webhook-signature": SPEC_SIGNATURE},
         SPEC_BODY, SPEC_TIMESTAMP, "missing header webhook-id"),
        ("no signature", {"webhook-id": SPEC_ID, "webhook-timestamp": "1614265330"}, SPEC_BODY,
         SPEC_TIMESTAMP, "missing header webhook-signature"),
    ],
)  # fmt: skip
def test_verify_rejects(
    case: str, headers: dict[str, str], body: bytes, now: float, match: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=match):
        verify(secret=SPEC_SECRET, headers=headers, body=body, now=now)


def test_verify_rejects_a_wrong_secret() -> None:
    with pytest.raises(WebhookSignatureError, match="no v1"):
        verify(secret=new_secret(), headers=spec_headers(), body=SPEC_BODY, now=SPEC_TIMESTAMP)


def test_new_secrets_are_fresh_and_sign_what_verify_accepts() -> None:
    first, second = new_secret(), new_secret()
    body = b'{"x":1}'
    header = sign(secret=first, message_id="msg_3", timestamp=1_700_000_000, body=body)
    headers = {
        "webhook-id": "msg_3",
        "webhook-timestamp": "1700000000",
        "webhook-signature": header,
    }

    verify(secret=first, headers=headers, body=body, now=1_700_000_000)

    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    with pytest.raises(WebhookSignatureError):
        verify(secret=second, headers=headers, body=body, now=1_700_000_000)


@pytest.mark.parametrize(("secret", "match"), [("whsec_c2hvcnQ=", "24 to 64 bytes"),
                                               ("whsec_not base64!", "base64")])  # fmt: skip
def test_a_malformed_secret_is_refused(tmp_path: Path, secret: str, match: str) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox, pytest.raises(ValueError, match=match):
        outbox.set_endpoint(institution=LENDER, url="https://lender.example/hook", secret=secret)


# --- the outbox ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://lender.example/hook", "http or https"),
        ("lender.example/hook", "http or https"),
        ("https:///hook", "must name a host"),
        ("https://lender.example:99999/hook", "not a valid URL"),
        ("https://lender .example/hook", "whitespace"),
        ("https://alice:hunter2@lender.example/hook", "user name or password"),
    ],
)
def test_a_bad_url_is_refused_with_a_clear_message(tmp_path: Path, url: str, match: str) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        with pytest.raises(WebhookConfigError, match=match) as caught:
            outbox.set_endpoint(institution=LENDER, url=url)

        assert isinstance(caught.value, ValueError)
        assert "hunter2" not in str(caught.value)
        assert outbox.endpoint(LENDER) is None


def test_a_payload_or_message_id_that_cannot_be_sent_is_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        for payload in ({"value": float("nan")}, {"when": object()}):
            with pytest.raises(WebhookConfigError, match="not plain JSON"):
                outbox.enqueue(institution=LENDER, event_type=ALERT, payload=payload,
                               message_id="msg_1")  # fmt: skip
        with pytest.raises(WebhookConfigError, match="message_id"):
            outbox.enqueue(institution=LENDER, event_type=ALERT, payload={}, message_id="a b")

        assert outbox.deliveries() == []


def test_the_same_message_id_is_stored_and_delivered_once(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        receiver = Receiver(secret=new_secret())
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            deliverer = Deliverer(outbox)

            assert enqueue(outbox) is True
            assert enqueue(outbox) is False
            assert await deliverer.deliver_due() == 1
            assert enqueue(outbox) is False
            assert await deliverer.deliver_due() == 0
            await deliverer.close()

        assert len(receiver.received) == 1 and len(outbox.deliveries()) == 1
        outbox.close()

    asyncio.run(main())


def test_a_delivery_is_signed_and_its_body_holds_only_the_payload(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        receiver = Receiver(secret=new_secret(), clock=clock)
        async with serving(receiver) as url:
            secret = outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox, "msg_alert_1")
            deliverer = Deliverer(outbox, clock=clock)

            assert await deliverer.deliver_due() == 1
            await deliverer.close()

        assert receiver.rejected == []
        [(headers, body)] = receiver.received
        assert headers["webhook-id"] == "msg_alert_1"
        assert headers["webhook-timestamp"] == str(int(clock.now))
        assert headers["Content-Type"] == "application/json"
        document = json.loads(body)
        assert document == {"type": ALERT, "id": "msg_alert_1",
                            "timestamp": "2023-11-14T22:13:20.000Z", "data": PAYLOAD}  # fmt: skip
        assert body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        key = base64.b64decode(secret.removeprefix("whsec_"))
        assert secret.encode() not in body and base64.b64encode(key) not in body
        [delivery] = outbox.deliveries(institution=LENDER, status="delivered")
        assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 200, None)
        assert delivery.delivered_at == clock.now and delivery.next_attempt_at is None
        assert delivery.payload == PAYLOAD
        outbox.close()

    asyncio.run(main())


def test_a_webhook_waits_for_its_institution_to_register_an_endpoint(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        receiver = Receiver(secret=new_secret())
        deliverer = Deliverer(outbox)
        enqueue(outbox)

        [waiting] = outbox.deliveries(status="pending")
        assert waiting.last_error == NO_ENDPOINT
        assert await deliverer.deliver_due() == 0

        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            assert outbox.deliveries()[0].last_error is None
            assert await deliverer.deliver_due() == 1
            await deliverer.close()

        assert len(receiver.received) == 1
        outbox.close()

    asyncio.run(main())


def test_pending_webhooks_survive_reopening_the_outbox(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "outbox.db"

    async def main() -> None:
        receiver = Receiver(secret=new_secret(), clock=clock, answers=[(503, {})])
        async with serving(receiver) as url:
            first = Outbox(path, clock=clock)
            first.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(first, "msg_1")
            assert await Deliverer(first, backoff_s=0.01, clock=clock).deliver_due() == 0
            enqueue(first, "msg_2")
            # no close: as after a crash, a new Outbox on the file sees what was committed

            reopened = Outbox(path, clock=clock)
            clock.advance(1.0)
            deliverer = Deliverer(reopened, clock=clock)
            assert reopened.endpoint(LENDER) == first.endpoint(LENDER)
            assert await deliverer.deliver_due() == 2
            await deliverer.close()

        attempts = {d.message_id: d.attempts for d in reopened.deliveries(status="delivered")}
        assert attempts == {"msg_1": 2, "msg_2": 1}
        first.close()
        reopened.close()

    asyncio.run(main())


# --- retries ------------------------------------------------------------------------------


def test_a_receiver_answering_500_twice_gets_it_on_the_third_attempt(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        receiver = Receiver(secret=new_secret(), clock=clock, answers=[(500, {}), (500, {})])
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, backoff_s=0.01, clock=clock)

            assert await deliverer.deliver_due() == 0
            [first] = outbox.deliveries(status="pending")
            assert (first.attempts, first.last_status) == (1, 500)
            assert clock.now + 0.005 <= (first.next_attempt_at or 0) <= clock.now + 0.01
            assert await deliverer.deliver_due() == 0  # not due yet: nothing sent
            assert len(receiver.received) == 1

            clock.advance(0.01)
            assert await deliverer.deliver_due() == 0
            [second] = outbox.deliveries(status="pending")
            assert second.attempts == 2
            assert clock.now + 0.01 <= (second.next_attempt_at or 0) <= clock.now + 0.02

            clock.advance(0.02)
            assert await deliverer.deliver_due() == 1
            await deliverer.close()

        [delivered] = outbox.deliveries(status="delivered")
        assert (delivered.attempts, delivered.last_status) == (3, 200)
        ids = {headers["webhook-id"] for headers, _ in receiver.received}
        assert len(receiver.received) == 3 and ids == {"msg_1"}
        assert len({body for _, body in receiver.received}) == 1
        outbox.close()

    asyncio.run(main())


def test_retry_after_sets_the_next_attempt_up_to_the_cap(tmp_path: Path) -> None:
    clock = Clock()
    # the second answer comes 30 s on, and names a date 120 s after that
    http_date = email.utils.formatdate(clock.now + 30 + 120, usegmt=True)

    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        answers = [(429, {"Retry-After": "30"}), (503, {"Retry-After": http_date}),
                   (429, {"Retry-After": "100000"})]  # fmt: skip
        receiver = Receiver(secret=new_secret(), clock=clock, answers=answers)
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, max_backoff_s=600, clock=clock)

            waits = []
            for _ in range(3):
                start = clock.now
                assert await deliverer.deliver_due() == 0
                retry_at = outbox.deliveries()[0].next_attempt_at
                assert retry_at is not None
                waits.append(retry_at - start)
                clock.now = retry_at
            assert await deliverer.deliver_due() == 1
            await deliverer.close()

        assert waits == [30.0, 120.0, 600.0]
        outbox.close()

    asyncio.run(main())


def test_a_410_is_dead_at_once_and_never_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()

    async def main() -> str:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        receiver = Receiver(secret=new_secret(), clock=clock, answers=[(410, {})])
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, clock=clock)

            with caplog.at_level(logging.WARNING, logger="coordinator.monitoring.webhooks"):
                assert await deliverer.deliver_due() == 0
            clock.advance(10_000)
            assert await deliverer.deliver_due() == 0
            await deliverer.close()

        [dead] = outbox.deliveries(status="dead")
        assert (dead.attempts, dead.last_status, dead.next_attempt_at) == (1, 410, None)
        assert len(receiver.received) == 1
        outbox.close()
        return url

    url = asyncio.run(main())

    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert LENDER in warning and url in warning and "410" in warning


def test_a_receiver_with_the_old_secret_refuses_it_after_a_rotation(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        old = outbox.set_endpoint(institution=LENDER, url="https://lender.example/hook")
        receiver = Receiver(secret=old)
        async with serving(receiver) as url:
            new = outbox.set_endpoint(institution=LENDER, url=url)
            enqueue(outbox)
            deliverer = Deliverer(outbox)

            assert await deliverer.deliver_due() == 0
            await deliverer.close()

        assert new != old and receiver.received == []
        assert receiver.rejected == ["no v1 signature matches this body under this secret"]
        assert outbox.deliveries(status="dead")[0].last_status == 401
        outbox.close()

    asyncio.run(main())


def test_max_attempts_exhausted_makes_it_dead(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        receiver = Receiver(secret=new_secret(), clock=clock, answers=[(503, {})] * 5)
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, max_attempts=3, backoff_s=1, max_backoff_s=1, clock=clock)

            for _ in range(5):
                assert await deliverer.deliver_due() == 0
                clock.advance(1)
            await deliverer.close()

        [dead] = outbox.deliveries(status="dead")
        assert (dead.attempts, dead.last_status) == (3, 503)
        assert len(receiver.received) == 3
        outbox.close()

    asyncio.run(main())


def test_an_unreachable_endpoint_is_retried_until_it_answers(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db", clock=clock)
        secret = outbox.set_endpoint(institution=LENDER, url=closed_port_url())
        enqueue(outbox)
        deliverer = Deliverer(outbox, backoff_s=5, clock=clock)

        assert await deliverer.deliver_due() == 0
        [failed] = outbox.deliveries(status="pending")
        assert (failed.attempts, failed.last_status) == (1, None)
        assert "Connect" in (failed.last_error or "")
        assert failed.next_attempt_at is not None and failed.next_attempt_at > clock.now

        receiver = Receiver(secret=secret, clock=clock)
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=secret)
            clock.advance(5)
            assert await deliverer.deliver_due() == 1
            await deliverer.close()

        assert outbox.deliveries(status="delivered")[0].attempts == 2
        outbox.close()

    asyncio.run(main())


def test_a_slow_receiver_times_out_and_is_retried(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        receiver = Receiver(secret=new_secret(), delay_s=0.5)
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, timeout_s=0.1)

            assert await deliverer.deliver_due() == 0
            await deliverer.close()

        [pending] = outbox.deliveries(status="pending")
        assert pending.last_error == "no answer within 0.1 s" and pending.attempts == 1
        outbox.close()

    asyncio.run(main())


def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        elsewhere = Receiver(secret=new_secret())
        async with serving(elsewhere) as other_url:
            receiver = Receiver(secret=elsewhere.secret, answers=[(307, {"Location": other_url})])
            async with serving(receiver) as url:
                outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
                enqueue(outbox)
                deliverer = Deliverer(outbox)
                assert await deliverer.deliver_due() == 0
                await deliverer.close()

        assert elsewhere.received == []
        [pending] = outbox.deliveries(status="pending")
        assert pending.last_status == 307 and "register the final URL" in (pending.last_error or "")
        outbox.close()

    asyncio.run(main())


# --- run and notify -----------------------------------------------------------------------


def test_notify_wakes_run_within_milliseconds_from_any_thread(tmp_path: Path) -> None:
    async def main() -> list[float]:
        outbox = Outbox(tmp_path / "outbox.db")
        receiver = Receiver(secret=new_secret())
        latencies = []
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            deliverer = Deliverer(outbox, poll_s=30)
            stop = asyncio.Event()
            running = asyncio.create_task(deliverer.run(stop))
            await asyncio.sleep(0.05)  # idle: asleep until a notify or 30 s from now

            for n, notify_from in enumerate((call_here, call_from_a_thread)):
                sent = time.perf_counter()
                enqueue(outbox, f"msg_{n}")
                notify_from(deliverer.notify)
                arrived = await asyncio.wait_for(receiver.arrivals.get(), timeout=2)
                latencies.append(arrived - sent)

            stop.set()
            await asyncio.wait_for(running, timeout=1)
            await deliverer.close()
        assert len(outbox.deliveries(status="delivered")) == 2
        outbox.close()
        return latencies

    latencies = asyncio.run(main())

    assert max(latencies) < 0.5  # a correctness bound (poll_s is 30 s), not a benchmark


def call_here(function: Callable[[], None]) -> None:
    function()


def call_from_a_thread(function: Callable[[], None]) -> None:
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def test_run_retries_on_its_own_when_a_retry_falls_due(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        receiver = Receiver(secret=new_secret(), answers=[(500, {}), (502, {})])
        async with serving(receiver) as url:
            outbox.set_endpoint(institution=LENDER, url=url, secret=receiver.secret)
            enqueue(outbox)
            deliverer = Deliverer(outbox, backoff_s=0.01, poll_s=30)
            stop = asyncio.Event()
            running = asyncio.create_task(deliverer.run(stop))

            for _ in range(3):
                await asyncio.wait_for(receiver.arrivals.get(), timeout=2)
            await _until(lambda: bool(outbox.deliveries(status="delivered")))
            stop.set()
            await asyncio.wait_for(running, timeout=1)
            await deliverer.close()

        assert outbox.deliveries()[0].attempts == 3
        outbox.close()

    asyncio.run(main())


async def _until(condition: Callable[[], bool], *, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)
