"""Short-lived access tokens for lending apps (OAuth 2.0 client credentials, RFC 6749 §4.4).

An app trades its client id and secret at ``POST /v1/oauth/token`` for a JWT (RFC 7519,
HS256 under the service's own secret) that names the app, its institution and the scopes
granted, valid for ``ttl_s`` seconds (5 minutes by default). Every API call presents it as
``Authorization: Bearer``; the scopes in the token, not the request, decide what it may do.
A token verified once is remembered until it expires, so an app's next calls skip the
signature check (a cache of verified tokens only, keyed by the whole token).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt

from consent.keys import write_private

__all__ = ["Caller", "TokenError", "TokenIssuer"]

AUDIENCE: Final = "fedrisk-scoring-api"
_KEY_FILE: Final = "token-secret"
#: Verified tokens remembered at most (the cache starts again when full).
_CACHE_SIZE: Final = 10_000
_EXPIRED: Final = "the access token has expired: request a new one"


class TokenError(Exception):
    """A bearer token is missing, malformed, expired or not ours."""


@dataclass(frozen=True)
class Caller:
    """The app behind a verified token."""

    client_id: str
    institution: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return scope.startswith("score:") and "score:*" in self.scopes


class TokenIssuer:
    """Issues and verifies the service's access tokens."""

    def __init__(
        self, secret: bytes, *, ttl_s: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret needs at least 32 bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock
        self._verified: dict[str, tuple[Caller, float]] = {}

    @classmethod
    def in_folder(cls, folder: Path, *, ttl_s: int = 300) -> TokenIssuer:
        path = folder / _KEY_FILE
        if not path.exists():
            write_private(path, secrets.token_bytes(32))
        return cls(path.read_bytes(), ttl_s=ttl_s)

    def issue(self, *, client_id: str, institution: str, scopes: frozenset[str]) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "sub": client_id,
            "inst": institution,
            "scope": " ".join(sorted(scopes)),
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Caller:
        now = self._clock()
        known = self._verified.get(token)
        if known is not None:
            if now < known[1]:
                return known[0]
            del self._verified[token]
            raise TokenError(_EXPIRED)
        caller, expires = self._decode(token, now)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (caller, expires)
        return caller

    def _decode(self, token: str, now: float) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["sub", "exp", "aud", "scope", "inst"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise TokenError("the access token is not valid") from None
        try:
            expires = float(claims["exp"])
        except (TypeError, ValueError):
            raise TokenError("the access token is not valid") from None
        if now >= expires:
            raise TokenError(_EXPIRED)
        caller = Caller(
            client_id=str(claims["sub"]),
            institution=str(claims["inst"]),
            scopes=frozenset(str(claims["scope"]).split()),
        )
        return caller, expires
