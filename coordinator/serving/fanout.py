"""Partial inference over HTTP: the coordinator's calls to each participant's service.

Every call carries a fresh consent assertion issued for that participant only
(:class:`consent.assertions.AssertionSigner`). A vertical model asks each of its parties in
parallel. A horizontal model asks only the node that holds the subject: the coordinator
never sends a subject's id to a node that does not hold it. To know which node that is, it
sends each node a fresh random key and gets back HMAC-SHA-256(key, id) of every id the node
holds (``POST /v1/directory/{model}``); it looks subjects up by their HMAC under the same
key. Nodes learn nothing from this; the directory is rebuilt when a subject is not in it
(at most every ``refresh_s`` seconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

from consent.assertions import AssertionSigner

from .catalog import ServedModel

__all__ = ["FanOut", "PartyAnswer", "PartyError"]

logger = logging.getLogger(__name__)

SCORING_PURPOSE = "credit_scoring"
DIRECTORY_PURPOSE = "directory_lookup"


class PartyError(Exception):
    """A participant could not answer; ``party`` and ``status`` say which and how."""

    def __init__(self, party: str, status: int, reason: str) -> None:
        super().__init__(f"{party} answered {status}: {reason}")
        self.party, self.status, self.reason = party, status, reason


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


class FanOut:
    """HTTP calls to the participants named in ``endpoints`` (party -> base URL)."""

    def __init__(
        self,
        endpoints: Mapping[str, str],
        *,
        signer: AssertionSigner,
        assertion_ttl_s: float = 30.0,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.endpoints = dict(endpoints)
        self._signer = signer
        self._ttl_s = assertion_ttl_s
        #: An httpx client (tests give one over ASGI transports); else aiohttp, created in
        #: the serving event loop on first use (httpx's async pool costs several ms of CPU
        #: per call under load here, aiohttp a fraction of one).
        self._client = client
        self._session: aiohttp.ClientSession | None = None
        self._timeout_s = timeout_s
        self._directories: dict[str, tuple[bytes, dict[str, str], float]] = {}
        self._refresh_lock = asyncio.Lock()
        self.refresh_s = 30.0

    async def close(self) -> None:
        """Close the connections this fan-out opened (an injected client is its owner's to
        close); a later call opens new ones."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

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
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            )
        async with self._session.post(url, json=body, headers=headers) as response:
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, (await response.text())[:200]

    async def _ask(
        self, party: str, model: ServedModel, grants: Mapping[str, str], *, explain: bool
    ) -> PartyAnswer:
        base = self.endpoints.get(party)
        if base is None:
            raise PartyError(party, 503, "no endpoint configured for this participant")
        token = self._signer.issue(
            grants,
            purpose=SCORING_PURPOSE,
            categories=sorted(model.categories),
            model=model.name,
            audience=party,
            ttl_s=self._ttl_s,
        )
        try:
            status, data = await self._post(
                f"{base}/v1/partial/{model.name}",
                {"subject_ids": list(grants), "explain": explain},
                token,
            )
        except (httpx.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
            raise PartyError(party, 503, f"unreachable ({type(exc).__name__})") from None
        if status != 200:
            raise PartyError(party, status, _reason(data))
        if data.get("version") != model.version:
            raise PartyError(party, 409, f"serves version {data.get('version')}")
        return PartyAnswer(
            party=party,
            output_kind=str(data["output_kind"]),
            outputs=data["outputs"],
            occluded=data.get("occluded", {}),
            missing=list(data.get("missing", [])),
            levels=_levels(data.get("levels")),
        )

    async def vertical(
        self, model: ServedModel, grants: Mapping[str, str], *, explain: bool
    ) -> list[PartyAnswer]:
        """Every party's answer for the same subjects (each must hold all of them)."""
        answers = await asyncio.gather(
            *(self._ask(p, model, grants, explain=explain) for p in model.parties)
        )
        for answer in answers:
            if answer.missing:
                raise PartyError(answer.party, 404, f"{len(answer.missing)} subject(s) unknown")
        return list(answers)

    async def horizontal(
        self, model: ServedModel, grants: Mapping[str, str], *, explain: bool
    ) -> tuple[dict[str, PartyAnswer], list[str]]:
        """For each subject, the answer of the node holding it; and the subjects no node
        holds."""
        by_node, unknown = self._route(model, grants)
        if unknown and await self.refresh_directory(model):
            by_node, unknown = self._route(model, grants)
        answers = await asyncio.gather(
            *(self._ask(n, model, g, explain=explain) for n, g in by_node.items())
        )
        found = {subject: a for a in answers for subject in a.outputs}
        return found, [s for s in grants if s not in found]

    def _route(
        self, model: ServedModel, grants: Mapping[str, str]
    ) -> tuple[dict[str, dict[str, str]], list[str]]:
        key, nodes, _ = self._directories.get(model.name, (b"", {}, 0.0))
        by_node: dict[str, dict[str, str]] = {}
        unknown = []
        for subject, grant in grants.items():
            node = nodes.get(_pseudonym(key, subject)) if key else None
            if node is None:
                unknown.append(subject)
            else:
                by_node.setdefault(node, {})[subject] = grant
        return by_node, unknown

    async def refresh_directory(self, model: ServedModel, *, force: bool = False) -> bool:
        """Rebuild ``model``'s directory unless it is fresher than ``refresh_s``; whether
        it was rebuilt."""
        async with self._refresh_lock:
            built = self._directories.get(model.name, (b"", {}, 0.0))[2]
            if not force and time.monotonic() - built < self.refresh_s:
                return False
            key = secrets.token_bytes(32)
            lists = await asyncio.gather(
                *(self._directory_of(n, model, key) for n in model.parties),
                return_exceptions=True,
            )
            nodes: dict[str, str] = {}
            for node, result in zip(model.parties, lists, strict=True):
                if isinstance(result, BaseException):
                    logger.warning("no directory from %s: %s", node, result)
                    continue
                nodes.update(dict.fromkeys(result, node))
            self._directories[model.name] = (key, nodes, time.monotonic())
            logger.info(
                "directory of %s: %d subjects on %d nodes",
                model.name,
                len(nodes),
                len(set(nodes.values())),
            )
            return True

    async def _directory_of(self, node: str, model: ServedModel, key: bytes) -> list[str]:
        base = self.endpoints.get(node)
        if base is None:
            raise PartyError(node, 503, "no endpoint configured for this participant")
        token = self._signer.issue(
            {"*": "directory"},
            purpose=DIRECTORY_PURPOSE,
            categories=sorted(model.categories),
            model=model.name,
            audience=node,
            ttl_s=self._ttl_s,
        )
        status, data = await self._post(
            f"{base}/v1/directory/{model.name}", {"key": key.hex()}, token
        )
        if status != 200:
            raise PartyError(node, status, _reason(data))
        return list(data["pseudonyms"])


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
    return str(detail.get("reason", detail)) if isinstance(detail, dict) else str(detail)[:200]
