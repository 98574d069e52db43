"""Short-lived access tokens for lending apps (OAuth 2.0 client credentials, RFC 6749 §4.4).

An app trades its client id and secret at ``POST /v1/oauth/token`` for a JWT (RFC 7519,
HS256 under the service's own secret) that names the app, its institution and the scopes
granted, valid for ``ttl_s`` seconds (5 minutes by default). Every API call presents it as
``Authorization: Bearer``; the scopes in the token, not the request, decide what it may do.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt

from consent.keys import write_private

__all__ = ["Caller", "TokenError", "TokenIssuer"]

AUDIENCE: Final = "fedrisk-scoring-api"
_KEY_FILE: Final = "token-secret"


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

    def __init__(self, secret: bytes, *, ttl_s: int = 300) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret needs at least 32 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    @classmethod
    def in_folder(cls, folder: Path, *, ttl_s: int = 300) -> TokenIssuer:
        path = folder / _KEY_FILE
        if not path.exists():
            write_private(path, secrets.token_bytes(32))
        return cls(path.read_bytes(), ttl_s=ttl_s)

    def issue(self, *, client_id: str, institution: str, scopes: frozenset[str]) -> str:
        now = int(time.time())
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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["sub", "exp", "aud", "scope", "inst"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the access token has expired: request a new one") from None
        except jwt.PyJWTError:
            raise TokenError("the access token is not valid") from None
        return Caller(
            client_id=str(claims["sub"]),
            institution=str(claims["inst"]),
            scopes=frozenset(str(claims["scope"]).split()),
        )
