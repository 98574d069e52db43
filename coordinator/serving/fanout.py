"""Partial inference over HTTP: the coordinator's calls to each participant's service.

Every call carries a fresh consent assertion issued for that participant only
(:class:`consent.assertions.AssertionSigner`). A vertical model asks each of its parties in
parallel. A horizontal model asks only the node that holds the subject: the coordinator
never sends a subject's id to a node that does not hold it. To know which node that is, it
sends each node a fresh random key and gets back HMAC-SHA-256(key, id) of every id the node
holds (``POST /v1/directory/{model}``); it looks subjects up by their HMAC under the same
key. Nodes learn nothing from this; the directory is rebuilt when a subject is not in it
(at most every ``refresh_s`` seconds, or at once while a node did not answer the last
build).

A score needs every party it depends on: a party that is down, slow, or answers anything
but a well-formed answer fails the whole call with a :class:`PartyError` naming it, never a
score from the parties that did answer. ``timeout_s`` is one deadline for all the calls of
one request (directory included), not a limit per read: a node that trickles its answer
byte by byte is cut off at the deadline too.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
import httpx

from consent.assertions import AssertionSigner

from .catalog import ServedModel

__all__ = ["FanOut", "PartyAnswer", "PartyError"]

logger = logging.getLogger(__name__)

SCORING_PURPOSE = "credit_scoring"
DIRECTORY_PURPOSE = "directory_lookup"

#: How a participant failed (the ``cause`` of a :class:`PartyError`).
Cause = Literal[
    "unconfigured", "refused", "unreachable", "timeout", "disconnected", "error", "invalid"
]

_T = TypeVar("_T")


class PartyError(Exception):
    """A participant could not answer. ``party`` says which; ``status`` the HTTP status it
    answered (503 when it answered none, or nothing usable); ``cause`` how, in one word;
    ``reason`` in words (``str(error)`` reads "bank did not answer within 2.0 s")."""

    def __init__(self, party: str, status: int, reason: str, *, cause: Cause = "error") -> None:
        super().__init__(f"{party} {reason}")
        self.party, self.status, self.reason, self.cause = party, status, reason, cause


@dataclass
class PartyAnswer:
    """One participant's partial results."""

    party: str
    output_kind: str
    outputs: dict[str, list[float]]
    occluded: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    #: Each explained subject's own category of each categorical (by occlusion group).
    levels: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class _Directory:
    """Which node holds which subject (by HMAC under ``key``), and the nodes that did not
    answer when it was built (their subjects are missing from it)."""

    key: bytes = b""
    nodes: dict[str, str] = field(default_factory=dict)
    built: float = -math.inf
    failed: dict[str, PartyError] = field(default_factory=dict)


class FanOut:
    """HTTP calls to the participants named in ``endpoints`` (party -> base URL), each
    request's calls within ``timeout_s`` in all."""

    def __init__(
        self,
        endpoints: Mapping[str, str],
        *,
        signer: AssertionSigner,
        assertion_ttl_s: float = 30.0,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.endpoints = dict(endpoints)
        self._signer = signer
        self._ttl_s = assertion_ttl_s
        #: An httpx client (tests give one over ASGI transports); else aiohttp, created in
        #: the serving event loop on first use (httpx's async pool costs several ms of CPU
        #: per call under load here, aiohttp a fraction of one).
        self._client = client
        self._session: aiohttp.ClientSession | None = None
        self._timeout_s = timeout_s
        self._directories: dict[str, _Directory] = {}
        self._refresh_lock = asyncio.Lock()
        self.refresh_s = 30.0

    async def close(self) -> None:
        """Close the connections this fan-out opened (an injected client is its owner's to
        close); a later call opens new ones."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._timeout_s

    async def _post(self, url: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
        """POST JSON with a bearer token; the status and the decoded JSON (or text)."""
        headers = {"Authorization": f"Bearer {token}"}
        if self._client is not None:
            reply = await self._client.post(url, json=body, headers=headers)
            try:
                return reply.status_code, reply.json()
            except ValueError:
                return reply.status_code, reply.text[:200]
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=128, limit_per_host=32),
                # A backstop only: each request's deadline (``_call``) ends it first.
                timeout=aiohttp.ClientTimeout(total=self._timeout_s + 1.0),
            )
        async with self._session.post(url, json=body, headers=headers) as response:
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, (await response.text(errors="replace"))[:200]

    async def _call(
        self, party: str, path: str, body: dict[str, Any], token: str, *, deadline: float
    ) -> dict[str, Any]:
        """POST to ``party`` before ``deadline`` (event loop time); its JSON object, or a
        :class:`PartyError` saying in words what went wrong."""
        base = self.endpoints.get(party)
        if base is None:
            raise PartyError(party, 503, "has no endpoint configured", cause="unconfigured")
        try:
            async with asyncio.timeout_at(deadline):
                status, data = await self._post(f"{base}{path}", body, token)
        except TimeoutError:
            waited = _seconds(self._timeout_s)
            raise PartyError(
                party, 503, f"did not answer within {waited}", cause="timeout"
            ) from None
        except (aiohttp.ClientError, httpx.HTTPError, OSError) as exc:
            raise _transport_error(party, exc) from None
        if status != 200:
            raise _status_error(party, status, data)
        if not isinstance(data, dict):
            raise PartyError(party, 503, "answered something other than JSON", cause="invalid")
        return data

    async def _ask(
        self,
        party: str,
        model: ServedModel,
        grants: Mapping[str, str],
        *,
        explain: bool,
        deadline: float,
    ) -> PartyAnswer:
        token = self._signer.issue(
            grants,
            purpose=SCORING_PURPOSE,
            categories=sorted(model.categories),
            model=model.name,
            audience=party,
            ttl_s=self._ttl_s,
        )
        path = f"/v1/partial/{model.name}"
        with _failures_logged(party, path):
            data = await self._call(
                party,
                path,
                {"subject_ids": list(grants), "explain": explain},
                token,
                deadline=deadline,
            )
            if data.get("version") != model.version:
                raise PartyError(
                    party, 409, f"serves version {data.get('version')!r}, not {model.version!r}"
                )
            return _answer(party, data, asked=grants)

    async def vertical(
        self, model: ServedModel, grants: Mapping[str, str], *, explain: bool
    ) -> list[PartyAnswer]:
        """Every party's answer for the same subjects (each must hold all of them), asked in
        parallel; the first party to fail fails the call (the others are cancelled)."""
        deadline = self._deadline()
        answers = await _all(
            self._ask(p, model, grants, explain=explain, deadline=deadline) for p in model.parties
        )
        for answer in answers:
            if answer.missing:
                unknown = len(answer.missing)
                raise PartyError(answer.party, 404, f"does not hold {unknown} subject(s)")
        return answers

    async def horizontal(
        self, model: ServedModel, grants: Mapping[str, str], *, explain: bool
    ) -> tuple[dict[str, PartyAnswer], list[str]]:
        """For each subject, the answer of the node holding it; and the subjects no node
        holds. A subject not in the directory while a node did not answer its last build
        may be that node's: then the call fails with that node's error, it is not called
        unknown."""
        deadline = self._deadline()
        by_node, unknown = self._route(model, grants)
        if unknown:
            await self.refresh_directory(model, deadline=deadline, asked_at=time.monotonic())
            by_node, unknown = self._route(model, grants)
            failed = self._directories[model.name].failed
            if unknown and failed:
                first = next(iter(failed.values()))
                raise PartyError(first.party, first.status, first.reason, cause=first.cause)
        answers = await _all(
            self._ask(n, model, g, explain=explain, deadline=deadline) for n, g in by_node.items()
        )
        found = {subject: a for a in answers for subject in a.outputs}
        return found, [s for s in grants if s not in found]

    def _route(
        self, model: ServedModel, grants: Mapping[str, str]
    ) -> tuple[dict[str, dict[str, str]], list[str]]:
        directory = self._directories.get(model.name, _Directory())
        by_node: dict[str, dict[str, str]] = {}
        unknown = []
        for subject, grant in grants.items():
            key = directory.key
            node = directory.nodes.get(_pseudonym(key, subject)) if key else None
            if node is None:
                unknown.append(subject)
            else:
                by_node.setdefault(node, {})[subject] = grant
        return by_node, unknown

    async def refresh_directory(
        self,
        model: ServedModel,
        *,
        force: bool = False,
        deadline: float | None = None,
        asked_at: float | None = None,
    ) -> bool:
        """Rebuild ``model``'s directory unless it is fresher than ``refresh_s`` and every
        node answered its build, or it was built since ``asked_at`` (``time.monotonic()``:
        another request just rebuilt it); whether it was rebuilt. Nodes that do not answer
        by ``deadline`` (event loop time; default ``timeout_s`` from now) are left out of
        it, and noted."""
        async with self._refresh_lock:
            current = self._directories.get(model.name, _Directory())
            age = time.monotonic() - current.built
            if not force and (
                (asked_at is not None and current.built >= asked_at)
                or (age < self.refresh_s and not current.failed)
            ):
                return False
            key = secrets.token_bytes(32)
            deadline = self._deadline() if deadline is None else deadline
            lists = await asyncio.gather(
                *(self._directory_of(n, model, key, deadline=deadline) for n in model.parties),
                return_exceptions=True,
            )
            directory = _Directory(key=key, built=time.monotonic())
            for node, result in zip(model.parties, lists, strict=True):
                if isinstance(result, PartyError):
                    directory.failed[node] = result
                elif isinstance(result, BaseException):
                    raise result
                else:
                    directory.nodes.update(dict.fromkeys(result, node))
            self._directories[model.name] = directory
            logger.info(
                "directory of %s: %d subjects on %d nodes, %d node(s) did not answer",
                model.name,
                len(directory.nodes),
                len(set(directory.nodes.values())),
                len(directory.failed),
            )
            return True

    async def _directory_of(
        self, node: str, model: ServedModel, key: bytes, *, deadline: float
    ) -> list[str]:
        token = self._signer.issue(
            {"*": "directory"},
            purpose=DIRECTORY_PURPOSE,
            categories=sorted(model.categories),
            model=model.name,
            audience=node,
            ttl_s=self._ttl_s,
        )
        path = f"/v1/directory/{model.name}"
        with _failures_logged(node, path):
            data = await self._call(node, path, {"key": key.hex()}, token, deadline=deadline)
            pseudonyms = data.get("pseudonyms")
            if not isinstance(pseudonyms, list) or not all(isinstance(p, str) for p in pseudonyms):
                raise PartyError(node, 503, "sent a malformed directory", cause="invalid")
            return pseudonyms


@contextlib.contextmanager
def _failures_logged(party: str, path: str) -> Iterator[None]:
    """Log a :class:`PartyError` raised inside (who, what, after how long, why)."""
    started = time.perf_counter()
    try:
        yield
    except PartyError as exc:
        elapsed_ms = 1000 * (time.perf_counter() - started)
        logger.warning(
            "%s %s failed after %.0f ms (%s): %s", party, path, elapsed_ms, exc.cause, exc
        )
        raise


async def _all(calls: Iterator[Awaitable[_T]]) -> list[_T]:
    """The results of ``calls`` run concurrently, in order; at the first :class:`PartyError`
    the calls still running are cancelled (and awaited) and that error raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        parties = [e for e in failed.exceptions if isinstance(e, PartyError)]
        if parties:
            raise parties[0] from None
        raise
    return [task.result() for task in tasks]


async def _coroutine(call: Awaitable[_T]) -> _T:
    return await call


def _answer(party: str, data: dict[str, Any], *, asked: Mapping[str, str]) -> PartyAnswer:
    """A partial-inference answer checked for shape: every subject asked is either answered
    (a vector of finite numbers, the same length for all) or listed missing."""
    outputs, missing, kind = data.get("outputs"), data.get("missing", []), data.get("output_kind")
    malformed = PartyError(party, 503, "sent a malformed answer", cause="invalid")
    if not isinstance(outputs, dict) or not isinstance(missing, list) or not isinstance(kind, str):
        raise malformed
    lengths = set()
    for vector in outputs.values():
        if not isinstance(vector, list) or not all(_finite(v) for v in vector):
            raise malformed
        lengths.add(len(vector))
    if len(lengths) > 1 or 0 in lengths:
        raise malformed
    unanswered = [s for s in asked if s not in outputs and s not in missing]
    if unanswered:
        raise PartyError(
            party, 503, f"left {len(unanswered)} subject(s) unanswered", cause="invalid"
        )
    occluded = data.get("occluded", {})
    return PartyAnswer(
        party=party,
        output_kind=kind,
        outputs={s: [float(v) for v in vector] for s, vector in outputs.items() if s in asked},
        occluded=occluded if isinstance(occluded, dict) else {},
        missing=[str(s) for s in missing],
        levels=_levels(data.get("levels")),
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _transport_error(party: str, exc: BaseException) -> PartyError:
    """A connection-level failure, in words."""
    chain = list(_causes(exc))
    if any(isinstance(e, OSError) and e.errno == errno.ECONNREFUSED for e in chain):
        return PartyError(party, 503, "refused the connection", cause="refused")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return PartyError(party, 503, "could not be found (DNS)", cause="unreachable")
    if isinstance(exc, aiohttp.ClientConnectorError | httpx.ConnectError):
        return PartyError(party, 503, "could not be reached", cause="unreachable")
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientOSError
        | httpx.RemoteProtocolError
        | httpx.ReadError,
    ) or any(isinstance(e, ConnectionError) for e in chain):
        return PartyError(party, 503, "closed the connection mid-answer", cause="disconnected")
    reason = f"could not be reached ({type(exc).__name__})"
    return PartyError(party, 503, reason, cause="unreachable")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status_error(party: str, status: int, data: Any) -> PartyError:
    if status >= 500:
        return PartyError(party, status, f"answered HTTP {status}", cause="error")
    return PartyError(party, status, f"refused the call (HTTP {status}: {_reason(data)})")


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 1 else f"{value:.2g} s"


def _pseudonym(key: bytes, subject: str) -> str:
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()


def _levels(data: Any) -> dict[str, dict[str, str]]:
    """A node's ``levels`` (subject -> categorical -> its category), strings only; an older
    node sends none."""
    if not isinstance(data, dict):
        return {}
    return {
        str(subject): {str(k): v for k, v in named.items() if isinstance(v, str)}
        for subject, named in data.items()
        if isinstance(named, dict)
    }


def _reason(data: Any) -> str:
    detail = data.get("detail", data) if isinstance(data, dict) else data
    text = str(detail.get("reason", detail)) if isinstance(detail, dict) else str(detail)
    return text[:100]
