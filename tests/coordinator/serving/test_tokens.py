"""Access tokens: what a verified token grants, and when it stops granting it (the cache
of verified tokens included)."""

from __future__ import annotations

import jwt
import pytest

from coordinator.serving.tokens import AUDIENCE, TokenError, TokenIssuer

SECRET = b"s" * 32


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issuer(clock: Clock, secret: bytes = SECRET) -> TokenIssuer:
    return TokenIssuer(secret, ttl_s=300, clock=clock)


def test_a_token_names_its_app_institution_and_scopes() -> None:
    tokens = issuer(Clock(1_000_000.0))
    token = tokens.issue(client_id="app-1", institution="bank", scopes=frozenset({"score:x"}))
    caller = tokens.verify(token)
    assert (caller.client_id, caller.institution) == ("app-1", "bank")
    assert caller.allows("score:x") and not caller.allows("score:y")


def test_a_remembered_token_still_expires() -> None:
    clock = Clock(1_000_000.0)
    tokens = issuer(clock)
    token = tokens.issue(client_id="app-1", institution="bank", scopes=frozenset({"score:x"}))
    tokens.verify(token)  # now remembered
    clock.now += 299
    assert tokens.verify(token).client_id == "app-1"
    clock.now += 1
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)
    with pytest.raises(TokenError, match="expired"):  # and again, from the signature path
        tokens.verify(token)


def test_a_token_first_seen_after_its_expiry_is_refused() -> None:
    clock = Clock(1_000_000.0)
    tokens = issuer(clock)
    token = tokens.issue(client_id="app-1", institution="bank", scopes=frozenset())
    clock.now += 301
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_a_tampered_copy_of_a_remembered_token_is_refused() -> None:
    tokens = issuer(Clock(1_000_000.0))
    token = tokens.issue(client_id="app-1", institution="bank", scopes=frozenset({"score:x"}))
    tokens.verify(token)
    header, _claims, signature = token.split(".")
    forged = jwt.encode(
        {"sub": "app-2", "inst": "other", "scope": "score:*", "aud": AUDIENCE, "exp": 2e9},
        b"x" * 32,
        algorithm="HS256",
    )
    for bad in (
        f"{header}.{forged.split('.')[1]}.{signature}",  # other claims, the old signature
        forged,  # signed with another secret
        token + "A",
    ):
        with pytest.raises(TokenError, match="not valid"):
            tokens.verify(bad)


def test_another_services_token_is_refused() -> None:
    clock = Clock(1_000_000.0)
    theirs = issuer(clock, secret=b"t" * 32)
    token = theirs.issue(client_id="app-1", institution="bank", scopes=frozenset())
    with pytest.raises(TokenError, match="not valid"):
        issuer(clock).verify(token)
