"""A lender's webhook endpoint for alerts: checks every delivery's signature (what a
lender's own receiver must do, :func:`.webhooks.verify`) and keeps what it accepted.

It runs on a loopback port in a background thread; the demo, the tests and the benchmark
point the coordinator's webhook at it. ``answers`` scripts the status of the next
deliveries (a 503 to see the outbox retry)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from .webhooks import WebhookSignatureError, verify

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """``with WebhookReceiver() as hook``: POSTs to ``hook.url`` signed with ``hook.secret``
    are accepted; ``received`` holds their bodies, ``arrived`` when each alert's event
    arrived (``time.perf_counter``), ``rejected`` the deliveries with a bad signature."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.answers: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.arrived: dict[str, float] = {}
        self.rejected = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-receiver", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        self._runner, port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def wait(self, count: int, *, timeout_s: float = 30.0) -> bool:
        """Whether ``count`` deliveries were accepted within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    async def _start(self) -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sockets: list[Any] = list(getattr(site._server, "sockets", None) or [])
        if not sockets:
            raise RuntimeError("the webhook receiver did not bind a port on 127.0.0.1")
        return runner, int(sockets[0].getsockname()[1])

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(secret=self.secret, headers=dict(request.headers), body=body)
        except WebhookSignatureError:
            self.rejected += 1
            return web.Response(status=401)
        with self._lock:
            status = self.answers.pop(0) if self.answers else 204
            if status < 300:
                message = json.loads(body)
                self.arrived[str(message["data"]["event_id"])] = time.perf_counter()
                self.received.append(message)
        return web.Response(status=status)
