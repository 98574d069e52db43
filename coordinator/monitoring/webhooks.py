"""Signed webhook delivery of monitoring alerts to the lenders: durable, retried, at least once.

Each lender (institution) registers one endpoint URL and gets a secret. An alert is put in an
:class:`Outbox` (one SQLite file, WAL, fully synchronous, one transaction per change) and a
:class:`Deliverer` POSTs it, signed as the Standard Webhooks specification has it
(standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp`` (unix seconds) and
``webhook-signature``, a space-separated list of ``v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of a ``whsec_`` secret. A
lender checks it with any Standard Webhooks library, or with :func:`verify`.

A 2xx answer delivers it; 408, 429, 5xx, a redirect (never followed: register the final URL),
a timeout or a connection error is retried with capped exponential backoff and jitter, or
after the receiver's ``Retry-After``; any other answer (400, 401, 404, 410, ...) is a refusal
and ends it, as does ``max_attempts``. Every attempt is signed afresh with the same
``webhook-id``; a crash between a POST and its record sends it again, so receivers
deduplicate on that id. The body, ``{"type", "id", "timestamp", "data"}`` with ``data`` the
payload given and nothing else, is written once at enqueue and sent byte for byte each time.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import logging
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

import aiohttp

__all__ = [
    "NO_ENDPOINT",
    "Deliverer",
    "Delivery",
    "Endpoint",
    "Outbox",
    "WebhookConfigError",
    "WebhookError",
    "WebhookSignatureError",
    "new_secret",
    "sign",
    "verify",
]

logger = logging.getLogger(__name__)

Status = Literal["pending", "delivered", "dead"]

#: ``last_error`` of a delivery whose institution has no endpoint yet (it waits for one).
NO_ENDPOINT: Final = "no endpoint registered"

_PREFIX: Final = "whsec_"
_SECRET_BYTES: Final = 32
_KEY_BYTES: Final = range(24, 65)  # the specification's bounds on a secret's length
_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")
_STATUSES: Final = ("pending", "delivered", "dead")
_JITTER: Final = 0.5  # a backoff is drawn from (1 - _JITTER, 1] times its nominal value
_MAX_ID_CHARS: Final = 255

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS webhook_endpoints (institution TEXT PRIMARY KEY, "
    "url TEXT NOT NULL, secret TEXT NOT NULL, updated_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (message_id TEXT PRIMARY KEY, "
    "institution TEXT NOT NULL, event_type TEXT NOT NULL, body BLOB NOT NULL, "
    "status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')), "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, last_error TEXT, "
    "last_status INTEGER, created_at REAL NOT NULL, last_attempt_at REAL, delivered_at REAL)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due "
    "ON webhook_deliveries (status, next_attempt_at)",
)
_COLUMNS: Final = (
    "d.message_id, d.institution, d.event_type, d.body, d.status, d.attempts, "
    "d.next_attempt_at, d.last_error, d.last_status, d.created_at, d.last_attempt_at, "
    "d.delivered_at"
)


class WebhookError(Exception):
    """Root of the webhook errors."""


class WebhookSignatureError(WebhookError):
    """A request's headers do not prove that the holder of the secret sent this body, now."""


class WebhookConfigError(WebhookError, ValueError):
    """A bad endpoint URL, secret, message id or payload."""


# --- signatures (Standard Webhooks, symmetric v1) -----------------------------------------


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and the base64 of 32 random bytes."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of ``body`` sent as ``message_id`` at
    ``timestamp`` (unix seconds)."""
    return f"v1,{_signature(_key(secret), message_id, str(timestamp), body)}"


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: int = 300,
) -> None:
    """Check a received webhook; raise :class:`WebhookSignatureError` unless one of its
    ``v1`` signatures is ``secret``'s over this body and its timestamp is within
    ``tolerance_s`` of ``now`` (default: the time), which bounds replays."""
    if tolerance_s < 0:
        raise ValueError(f"tolerance_s must be >= 0, got {tolerance_s}")
    found = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _HEADERS if not found.get(name)]
    if missing:
        raise WebhookSignatureError(f"missing header {', '.join(missing)}")
    message_id, stamp, signatures = (found[name] for name in _HEADERS)
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookSignatureError(f"webhook-timestamp is not unix seconds: {stamp!r}")
    skew = (time.time() if now is None else now) - int(stamp)
    if abs(skew) > tolerance_s:
        raise WebhookSignatureError(
            f"webhook-timestamp {stamp} is {skew:+.0f} s from now, beyond ±{tolerance_s} s"
        )
    expected = _signature(_key(secret), message_id, stamp, body).encode("ascii")
    matched = False
    for part in signatures.split():
        version, _, value = part.partition(",")
        matched |= version == "v1" and hmac.compare_digest(value.encode(), expected)
    if not matched:
        raise WebhookSignatureError("no v1 signature matches this body under this secret")


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except ValueError as exc:  # binascii.Error; the secret itself stays out of the message
        raise WebhookConfigError(f"a webhook secret is {_PREFIX!r} and base64") from exc
    if len(key) not in _KEY_BYTES:
        raise WebhookConfigError(
            f"a webhook secret must decode to {_KEY_BYTES.start} to {_KEY_BYTES.stop - 1} "
            f"bytes, got {len(key)}"
        )
    return key


def _signature(key: bytes, message_id: str, stamp: str, body: bytes) -> str:
    content = f"{message_id}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


# --- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where an institution takes its webhooks, and the secret they are signed with."""

    institution: str
    url: str
    secret: str = field(repr=False)
    updated_at: float


@dataclass(frozen=True)
class Delivery:
    """One webhook and how its delivery went. ``last_status`` is the last HTTP status
    answered (None when none was); ``next_attempt_at`` is None once it is not pending."""

    message_id: str
    institution: str
    event_type: str
    body: bytes = field(repr=False)
    status: Status
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    last_status: int | None
    created_at: float
    last_attempt_at: float | None
    delivered_at: float | None

    @property
    def payload(self) -> dict[str, Any]:
        """The payload given at enqueue (the body's ``data``)."""
        return cast(dict[str, Any], json.loads(self.body)["data"])


class Outbox:
    """The webhooks to send and the lenders' endpoints, in the SQLite file ``path``.

    Safe to use from several threads; a new ``Outbox`` on the same file (after a crash, or
    in another process) sees every committed change."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)  # it holds the endpoints' secrets
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._db:
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def set_endpoint(self, *, institution: str, url: str, secret: str | None = None) -> str:
        """Register or replace ``institution``'s endpoint; its secret (a new one when
        ``secret`` is None). Pending webhooks go to the new URL, under the new secret."""
        _check_text("institution", institution)
        _check_url(url)
        chosen = new_secret() if secret is None else secret
        _key(chosen)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO webhook_endpoints VALUES (?, ?, ?, ?) ON CONFLICT (institution) "
                "DO UPDATE SET url = excluded.url, secret = excluded.secret, "
                "updated_at = excluded.updated_at",
                (institution, url, chosen, self._clock()),
            )
            self._db.execute(
                "UPDATE webhook_deliveries SET last_error = NULL "
                "WHERE institution = ? AND status = 'pending' AND last_error = ?",
                (institution, NO_ENDPOINT),
            )
        logger.info("webhook endpoint of %s set to %s", institution, url)
        return chosen

    def endpoint(self, institution: str) -> Endpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM webhook_endpoints WHERE institution = ?", (institution,)
            ).fetchone()
        return None if row is None else Endpoint(*row)

    def enqueue(
        self, *, institution: str, event_type: str, payload: Mapping[str, Any], message_id: str
    ) -> bool:
        """Store a webhook to send; False (and nothing stored) when ``message_id`` already
        was. Without an endpoint it waits, pending, until ``institution`` registers one."""
        _check_text("institution", institution)
        _check_text("event_type", event_type)
        _check_message_id(message_id)
        now = self._clock()
        body = _body(event_type=event_type, message_id=message_id, at=now, payload=payload)
        with self._lock, self._db:
            registered = self._db.execute(
                "SELECT 1 FROM webhook_endpoints WHERE institution = ?", (institution,)
            ).fetchone()
            stored = self._db.execute(
                "INSERT OR IGNORE INTO webhook_deliveries (message_id, institution, event_type, "
                "body, status, next_attempt_at, last_error, created_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                (message_id, institution, event_type, body, now,
                 None if registered else NO_ENDPOINT, now),
            ).rowcount == 1  # fmt: skip
        if not stored:
            logger.info("webhook %s already enqueued; stored once", message_id)
        return stored

    def due(self, *, now: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` pending webhooks to send at ``now``, the longest due first (those
        of an institution without an endpoint wait)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        return self._select(
            "JOIN webhook_endpoints USING (institution) WHERE d.status = 'pending' "
            "AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.created_at LIMIT ?",
            (now, limit),
        )

    def next_due_at(self) -> float | None:
        """When the next pending webhook with an endpoint is due; None when there is none."""
        with self._lock:
            (at,) = self._db.execute(
                "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries AS d "
                "JOIN webhook_endpoints USING (institution) WHERE d.status = 'pending'"
            ).fetchone()
        return cast(float | None, at)

    def mark_delivered(self, *, message_id: str, now: float, http_status: int) -> bool:
        """Record a delivery; False when ``message_id`` was not pending."""
        return self._update(
            "status = 'delivered', next_attempt_at = NULL, last_error = NULL, "
            "last_status = ?, last_attempt_at = ?, delivered_at = ?",
            (http_status, now, now),
            message_id,
        )

    def mark_failed(
        self,
        *,
        message_id: str,
        now: float,
        error: str,
        retry_at: float | None,
        http_status: int | None = None,
    ) -> bool:
        """Record a failed attempt, to retry at ``retry_at`` (None: dead, no more tries);
        False when ``message_id`` was not pending."""
        return self._update(
            "status = ?, next_attempt_at = ?, last_error = ?, last_status = ?, last_attempt_at = ?",
            ("dead" if retry_at is None else "pending", retry_at, error, http_status, now),
            message_id,
        )

    def deliveries(
        self, *, institution: str | None = None, status: Status | None = None
    ) -> list[Delivery]:
        """Every webhook stored (of ``institution``, in ``status``), oldest first."""
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}, got {status!r}")
        return self._select(
            "WHERE (? IS NULL OR d.institution = ?) AND (? IS NULL OR d.status = ?) "
            "ORDER BY d.created_at, d.message_id",
            (institution, institution, status, status),
        )

    def _select(self, clauses: str, parameters: tuple[Any, ...]) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM webhook_deliveries AS d {clauses}", parameters
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def _update(self, assignments: str, values: tuple[Any, ...], message_id: str) -> bool:
        with self._lock, self._db:
            cursor = self._db.execute(
                f"UPDATE webhook_deliveries SET attempts = attempts + 1, {assignments} "
                "WHERE message_id = ? AND status = 'pending'",
                (*values, message_id),
            )
        return cursor.rowcount == 1


def _body(*, event_type: str, message_id: str, at: float, payload: Mapping[str, Any]) -> bytes:
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    document = {
        "type": event_type,
        "id": message_id,
        "timestamp": stamp.replace("+00:00", "Z"),
        "data": dict(payload),
    }
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise WebhookConfigError(f"payload of {message_id!r} is not plain JSON: {exc}") from exc
    return text.encode()


def _check_text(name: str, value: str) -> None:
    if not value or not value.isprintable() or value != value.strip():
        raise WebhookConfigError(f"{name} must be non-empty printable text, got {value!r}")


def _check_message_id(message_id: str) -> None:
    if not (
        0 < len(message_id) <= _MAX_ID_CHARS
        and message_id.isascii()
        and message_id.isprintable()
        and " " not in message_id
    ):
        raise WebhookConfigError(
            f"message_id must be 1 to {_MAX_ID_CHARS} printable ASCII characters without "
            f"spaces (it is sent as a header), got {message_id!r}"
        )


def _check_url(url: str) -> None:
    if any(c.isspace() or not c.isprintable() for c in url):
        raise WebhookConfigError(f"webhook URL must not contain whitespace, got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise WebhookConfigError(f"webhook URL {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise WebhookConfigError(f"webhook URL must be http or https, got {url!r}")
    if not parts.hostname:
        raise WebhookConfigError(f"webhook URL must name a host, got {url!r}")
    if parts.username is not None or parts.password is not None:  # never echo a password
        raise WebhookConfigError(
            f"webhook URL for host {parts.hostname!r} must not carry a user name or password: "
            "the signature authenticates the coordinator"
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        logger.warning("webhook URL %s is plain http: alerts will cross the network unencrypted",
                       url)  # fmt: skip


# --- the deliverer ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """What one POST gave."""

    delivered: bool = False
    retryable: bool = True
    http_status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


class Deliverer:
    """Sends the outbox's due webhooks, ``concurrency`` at a time, and records each attempt.

    One Deliverer per outbox file (two would send the same webhook twice), used on one
    event loop. ``backoff_s`` is the first retry's nominal delay, doubled on each further
    failure up to ``max_backoff_s``; a ``Retry-After`` is honoured up to ``max_backoff_s``.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 8,
        backoff_s: float = 1.0,
        max_backoff_s: float = 3600.0,
        concurrency: int = 16,
        batch_size: int = 256,
        poll_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        for name, value in (("timeout_s", timeout_s), ("backoff_s", backoff_s),
                            ("poll_s", poll_s)):  # fmt: skip
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, count in (("max_attempts", max_attempts), ("concurrency", concurrency),
                            ("batch_size", batch_size)):  # fmt: skip
            if count < 1:
                raise ValueError(f"{name} must be >= 1, got {count}")
        if max_backoff_s < backoff_s:
            raise ValueError(
                f"max_backoff_s must be >= backoff_s ({backoff_s}), got {max_backoff_s}"
            )
        self._outbox = outbox
        self._timeout_s, self._max_attempts = timeout_s, max_attempts
        self._backoff_s, self._max_backoff_s = backoff_s, max_backoff_s
        self._concurrency, self._batch_size, self._poll_s = concurrency, batch_size, poll_s
        self._clock = clock
        self._rng = random.Random() if rng is None else rng  # jitter, not a secret
        self._session, self._own_session = session, session is None
        self._slots = asyncio.Semaphore(concurrency)
        self._sending = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Wake :meth:`run` now (call it after an enqueue); safe from any thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop is running:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def deliver_due(self) -> int:
        """Send every webhook due now once; how many were delivered."""
        async with self._sending:
            started, seen, delivered = self._clock(), set[str](), 0
            while True:
                batch = await asyncio.to_thread(
                    self._outbox.due, now=started, limit=self._batch_size
                )
                fresh = [d for d in batch if d.message_id not in seen]
                seen.update(d.message_id for d in fresh)
                delivered += sum(await asyncio.gather(*(self._deliver(d) for d in fresh)))
                if not fresh or len(batch) < self._batch_size:
                    return delivered

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver due webhooks until ``stop`` is set, sleeping until the next is due, a
        :meth:`notify`, or ``poll_s`` (for webhooks enqueued by another process)."""
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wake.clear()  # a notify from here on wakes the wait below
                try:
                    await self.deliver_due()
                    next_at = await asyncio.to_thread(self._outbox.next_due_at)
                except (sqlite3.Error, OSError):  # the outbox is locked or the disk full
                    logger.exception("webhook outbox unavailable; trying again")
                    next_at = None
                wait_s = self._poll_s
                if next_at is not None:
                    wait_s = min(wait_s, max(0.0, next_at - self._clock()))
                await _first_of(stop, self._wake, timeout_s=wait_s)
        finally:
            self._loop = None

    async def close(self) -> None:
        """Close the HTTP session, unless it was given."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, delivery: Delivery) -> bool:
        async with self._slots:
            endpoint = await asyncio.to_thread(self._outbox.endpoint, delivery.institution)
            if endpoint is None:
                return False
            outcome = await self._post(endpoint, delivery)
        return await asyncio.to_thread(self._record, delivery, endpoint, outcome)

    async def _post(self, endpoint: Endpoint, delivery: Delivery) -> _Outcome:
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fedrisk-webhooks/1",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret=endpoint.secret, message_id=delivery.message_id,
                                      timestamp=timestamp, body=delivery.body),
        }  # fmt: skip
        try:
            async with self._client().post(
                endpoint.url,
                data=delivery.body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as response:
                async for _ in response.content.iter_chunked(65536):
                    pass  # read (and drop) the answer, so that the connection is kept
                return _classify(response, now=self._clock())
        except TimeoutError:
            return _Outcome(error=f"no answer within {self._timeout_s} s")
        except aiohttp.ClientError as exc:
            return _Outcome(error=f"{type(exc).__name__}: {exc}")

    def _record(self, delivery: Delivery, endpoint: Endpoint, outcome: _Outcome) -> bool:
        now, attempt = self._clock(), delivery.attempts + 1
        if outcome.delivered:
            assert outcome.http_status is not None
            self._outbox.mark_delivered(
                message_id=delivery.message_id, now=now, http_status=outcome.http_status
            )
            return True
        retry_at: float | None = None
        if not outcome.retryable:
            logger.warning("webhook %s: %s (%s) refused it with HTTP %s; not retried",
                           delivery.message_id, endpoint.institution, endpoint.url,
                           outcome.http_status)  # fmt: skip
        elif attempt >= self._max_attempts:
            logger.warning("webhook %s: %s (%s) failed %d attempts, the last with %s; given up",
                           delivery.message_id, endpoint.institution, endpoint.url, attempt,
                           outcome.error)  # fmt: skip
        else:
            retry_at = now + self._delay_s(attempt, outcome.retry_after_s)
            logger.info("webhook %s: %s (%s) attempt %d failed with %s; retry in %.3f s",
                        delivery.message_id, endpoint.institution, endpoint.url, attempt,
                        outcome.error, retry_at - now)  # fmt: skip
        self._outbox.mark_failed(
            message_id=delivery.message_id,
            now=now,
            error=outcome.error or "failed",
            retry_at=retry_at,
            http_status=outcome.http_status,
        )
        return False

    def _delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self._max_backoff_s)
        nominal = min(self._max_backoff_s, self._backoff_s * 2.0 ** min(attempt - 1, 64))
        return nominal * (1.0 - _JITTER * self._rng.random())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on the running loop, on first use
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),  # nothing carries between lenders
            )
        return self._session


def _classify(response: aiohttp.ClientResponse, *, now: float) -> _Outcome:
    status = response.status
    if 200 <= status < 300:
        return _Outcome(delivered=True, http_status=status)
    error = f"HTTP {status} {response.reason or ''}".rstrip()
    if 300 <= status < 400:
        error += ": redirects are not followed; register the final URL"
    elif status < 500 and status not in (408, 429):
        return _Outcome(retryable=False, http_status=status, error=error)
    retry_after_s = _retry_after_s(response.headers.get("Retry-After"), now=now)
    return _Outcome(http_status=status, error=error, retry_after_s=retry_after_s)


def _retry_after_s(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP-date, RFC 9110
    10.2.3); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


async def _first_of(*events: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
