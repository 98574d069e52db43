"""An open-loop load generator for the scoring API (run as its own process).

    python -m bench.loadgen --url URL --token TOKEN --model M --subjects FILE \
        --rate 200 --duration-s 15 --out result.json

Requests leave on a fixed schedule (``rate`` per second), whether or not earlier ones have
returned, and each latency is measured from its *scheduled* start, so a server that falls
behind shows it in the tail instead of slowing the generator down (no coordinated
omission; wrk2's method). Subjects are drawn in turn from the file (one id per line).

The client is a small HTTP/1.1 keep-alive client on asyncio's protocols, with every request
serialised before the clock starts: a general-purpose client (httpx) spent about 3 ms of CPU
per request here, more than the server under test on this 2-core machine, and took that
from the server. This one spends under half a millisecond. A connection carries one
request at a time (no pipelining); a request finding every connection busy waits for one, and
that wait counts in its latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import numpy as np

_HEADER_END = b"\r\n\r\n"


class ResponseError(Exception):
    """The server's answer could not be read as an HTTP/1.1 response with a length."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: write a request, resolve a future with its status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[int] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiting is None
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiting

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(_HEADER_END)
        if end < 0 or self.waiting is None:
            return
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            self._fail(ResponseError(f"no Content-Length in {head[0]!r}"))
            return
        if len(self._buffer) < end + 4 + length:
            return
        del self._buffer[: end + 4 + length]
        waiting, self.waiting = self.waiting, None
        waiting.set_result(int(head[0].split(" ", 2)[1]))

    def _fail(self, exc: Exception) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc)
        self.waiting = None
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)


def _requests(host: str, path: str, token: str, subjects: list[str]) -> list[bytes]:
    out = []
    for subject in subjects:
        body = json.dumps({"subject_id": subject}).encode()
        out.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def _run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    subjects = Path(args.subjects).read_text(encoding="utf-8").split()
    requests = _requests(
        f"{host}:{port}", f"{url.path}/v1/models/{args.model}/score", args.token, subjects
    )
    idle: deque[_Connection] = deque()
    freed: asyncio.Queue[None] = asyncio.Queue()
    opened = 0

    async def connection() -> _Connection:
        nonlocal opened
        while True:
            while idle:
                conn = idle.popleft()
                if not conn.closed.done():
                    return conn
                opened -= 1
            if opened < args.connections:
                opened += 1
                try:
                    _, conn = await loop.create_connection(_Connection, host, port)
                except OSError:
                    opened -= 1
                    raise
                return conn
            await freed.get()

    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(i: int, scheduled: float) -> None:
        try:
            conn = await connection()
        except OSError:
            status = 0
        else:
            try:
                status = await asyncio.wait_for(conn.send(requests[i % len(requests)]), 10.0)
            except (OSError, ResponseError, TimeoutError):
                status = 0
                if conn.transport is not None:
                    conn.transport.close()
            idle.append(conn)
            freed.put_nowait(None)
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    total = int(args.rate * args.duration_s)
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    ms = np.array(latencies) * 1000.0
    return {
        "requests": total,
        "rate_asked": args.rate,
        "rate_achieved": total / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--subjects", required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_run(args))
    else:
        result = uvloop.run(_run(args))
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
