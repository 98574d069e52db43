"""Who may call a route of the scoring API, decided before the request body is read.

Every route that needs a caller declares ``who: Annotated[Caller, auth.requires(scope)]``:
the bearer token of a registered app (401 otherwise), within the app's quota (429), holding
``scope`` (403; ``score:{model}`` takes the model from the path). The decision is a
:class:`consent.route_guard.RouteGuard`, so it comes before the body is parsed or
validated: a caller without the scope learns nothing of a route's schema. The scopes are
declared to OpenAPI through an OAuth 2.0 client-credentials scheme, so ``/docs`` shows
each route's scope and its *Authorize* button fetches a token from ``/v1/oauth/token``.

This module does not use postponed annotations: FastAPI reads the guard's signature.
"""

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import Depends, HTTPException, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from consent.route_guard import RouteGuard

from .service import ServingState
from .tokens import Caller, TokenError

__all__ = ["SCOPES", "TOKEN_URL", "Authorization", "api_error", "client_credentials"]

TOKEN_URL = "/v1/oauth/token"
#: The scopes an app can hold (``score:*`` allows every model).
SCOPES = {
    "score:*": "score subjects with any model",
    "score:{model}": "score subjects with the model named in the path (ask for score:<name>)",
    "consent:write": "record and withdraw grants to the app's institution",
    "consent:read": "read grants to the app's institution and their receipts",
    "evidence:read": "evidence certificates of the app's decisions and consent events",
    "alerts:read": "post-loan monitoring alerts on the institution's loans",
    "alerts:write": "set the institution's webhook for alerts",
    "monitoring:report": "a factory node's change events (the app's institution is the factory)",
}

_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=SCOPES)
    ),
    scheme_name="client_credentials",
    description="OAuth 2.0 client credentials (RFC 6749 §4.4): POST /v1/oauth/token",
    auto_error=False,
)


def api_error(status: int, reason: str, message: str, **headers: str) -> HTTPException:
    """An HTTP error with the API's ``{"reason", "message"}`` detail."""
    return HTTPException(
        status_code=status, detail={"reason": reason, "message": message}, headers=headers or None
    )


def client_credentials(
    authorization: str | None, client_id: str | None, client_secret: str | None
) -> tuple[str, str]:
    """A token request's client id and secret, from its form fields or from HTTP Basic
    (RFC 6749 §2.3.1: each form-urlencoded, then joined by ``:``); exactly one of them."""
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if basic and (client_id is not None or client_secret is not None):
        raise api_error(400, "invalid_request", "authenticate the client one way, not two")
    if basic:
        assert authorization is not None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            name, secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise api_error(
                401,
                "invalid_client",
                "malformed Basic credentials",
                **{"WWW-Authenticate": "Basic"},
            ) from None
        return unquote_plus(name), unquote_plus(secret)
    if client_id is None or client_secret is None:
        raise api_error(
            401,
            "invalid_client",
            "send client_id and client_secret in the form, or HTTP Basic credentials",
            **{"WWW-Authenticate": "Basic"},
        )
    return client_id, client_secret


class Authorization:
    """Token, quota and scope checks over one service's state."""

    def __init__(self, state: ServingState) -> None:
        self._state = state
        self._guards: dict[str | None, _ScopeGuard] = {}

    def requires(self, scope: str | None = None) -> Any:
        """The dependency of a route that needs ``scope`` (``None``: any registered app)."""
        guard = self._guards.setdefault(scope, _ScopeGuard(self, scope))
        return Security(guard, scopes=[scope] if scope else [])

    def caller(self, authorization: str | None) -> Caller:
        """The app behind an ``Authorization`` header, within its quota."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise api_error(
                401,
                "no_token",
                f"send Authorization: Bearer <access token> (POST {TOKEN_URL})",
                **{"WWW-Authenticate": "Bearer"},
            )
        state = self._state
        try:
            found = state.tokens.verify(authorization[7:].strip())
        except TokenError as exc:
            raise api_error(401, "bad_token", str(exc), **{"WWW-Authenticate": "Bearer"}) from None
        app_record = state.apps.get(found.client_id)
        if app_record is None:
            raise api_error(401, "unknown_app", "this app is no longer registered")
        wait = state.quotas.take(
            found.client_id, rate_per_s=app_record.rate_per_s, burst=app_record.burst
        )
        if wait > 0:
            raise api_error(
                429,
                "quota_exceeded",
                f"retry in {wait:.2f} s",
                **{"Retry-After": str(max(1, round(wait)))},
            )
        return found


class _ScopeGuard(RouteGuard):
    def __init__(self, auth: Authorization, scope: str | None) -> None:
        self._auth = auth
        self._scope = scope

    async def decide(self, request: Request) -> Caller:
        who = self._auth.caller(request.headers.get("authorization"))
        if self._scope is not None:
            needed = self._scope.format_map(request.path_params)
            if not who.allows(needed):
                raise api_error(403, "missing_scope", f"this app's token lacks the scope {needed}")
        return who

    async def __call__(  # type: ignore[override]
        self, request: Request, _documented: Annotated[str | None, Depends(_scheme)]
    ) -> Caller:
        who: Caller = await self.decided(request)
        return who
