"""Signed consent assertions: what a participant checks before it touches a subject's data.

The coordinator decides consent, but no participant trusts its word alone (DESIGN.md,
"Consent"): every partial-inference request carries a short-lived JSON Web Token (RFC 7519)
signed with the coordinator's Ed25519 key (EdDSA, RFC 8037), naming the subjects and the
grant that covers each, the purpose, the data categories, the model, the one participant it
is for (``aud``) and an expiry seconds away. The participant verifies signature, audience,
expiry, purpose and categories, that every subject it is asked about is named, and that the
token is not replayed, before it reads a row.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent.errors import ConsentError
from consent.keys import load_or_create_key, public_hex, public_key_from_hex

__all__ = [
    "ASSERTION_TTL_S",
    "AssertionRefusedError",
    "AssertionSigner",
    "AssertionVerifier",
    "ConsentAssertion",
]

ASSERTION_TTL_S: Final = 30
ISSUER: Final = "fedrisk-coordinator"
KEY_FILE: Final = "assertion-signing-key.pem"
_LEEWAY_S: Final = 2
RefusalReason = Literal[
    "malformed",
    "bad_signature",
    "expired",
    "wrong_audience",
    "wrong_purpose",
    "categories_not_covered",
    "subject_not_covered",
    "replayed",
]


class AssertionRefusedError(ConsentError):
    """A consent assertion does not allow what was asked; ``reason`` says why."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class ConsentAssertion:
    """A verified assertion: each subject with the grant that covers it."""

    grants: Mapping[str, str]
    purpose: str
    categories: frozenset[str]
    model: str
    audience: str
    expires_at: float
    token_id: str


class AssertionSigner:
    """The coordinator's assertion key, kept in ``folder`` (mode 0600)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = public_hex(key)

    @classmethod
    def in_folder(cls, folder: Path) -> AssertionSigner:
        return cls(load_or_create_key(folder / KEY_FILE))

    def issue(
        self,
        grants: Mapping[str, str],
        *,
        purpose: str,
        categories: Iterable[str],
        model: str,
        audience: str,
        ttl_s: float = ASSERTION_TTL_S,
        now: float | None = None,
    ) -> str:
        """A token for ``audience`` covering ``grants`` (subject id -> grant id)."""
        if not grants:
            raise ConsentError("an assertion must name at least one subject")
        issued = time.time() if now is None else now
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "iat": int(issued),
            "exp": issued + ttl_s,
            "jti": secrets.token_hex(12),
            "purpose": purpose,
            "categories": sorted(categories),
            "model": model,
            "grants": [[s, g] for s, g in grants.items()],
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA")


class AssertionVerifier:
    """What one participant runs: the coordinator's published key and its own name."""

    def __init__(self, public_key: str, *, audience: str, replay_window: int = 100_000) -> None:
        self._key = public_key_from_hex(public_key)
        self.audience = audience
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._window = replay_window
        self._lock = threading.Lock()

    def verify(
        self,
        token: str,
        *,
        subject_ids: Sequence[str],
        purpose: str,
        categories: Iterable[str],
        model: str,
        now: float | None = None,
    ) -> ConsentAssertion:
        """The assertion, if it allows reading ``categories`` of every one of
        ``subject_ids`` for ``purpose`` with ``model``; else :class:`AssertionRefusedError`.
        Each assertion is accepted once."""
        asserted = self.admit(token, purpose=purpose, categories=categories, model=model, now=now)
        self.settle(asserted, subject_ids=subject_ids, now=now)
        return asserted

    def admit(
        self,
        token: str,
        *,
        purpose: str,
        categories: Iterable[str],
        model: str,
        now: float | None = None,
    ) -> ConsentAssertion:
        """The first half of :meth:`verify`, before a request's subjects are known: the
        assertion is ours, for this party, unexpired, not used yet, for ``purpose`` with
        ``model`` and covering ``categories``. It is not spent: :meth:`settle` does that."""
        claims = self._decode(token, now=now)
        try:
            grants = {str(s): str(g) for s, g in claims["grants"]}
            held = frozenset(str(c) for c in claims["categories"])
            asserted = ConsentAssertion(
                grants=grants,
                purpose=str(claims["purpose"]),
                categories=held,
                model=str(claims["model"]),
                audience=self.audience,
                expires_at=float(claims["exp"]),
                token_id=str(claims["jti"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AssertionRefusedError("malformed", f"bad claims ({exc})") from None
        if asserted.purpose != purpose or asserted.model != model:
            raise AssertionRefusedError(
                "wrong_purpose", f"asserted {asserted.purpose} with {asserted.model}"
            )
        missing = frozenset(categories) - held
        if missing:
            raise AssertionRefusedError(
                "categories_not_covered", f"not asserted: {sorted(missing)}"
            )
        with self._lock:
            if asserted.token_id in self._seen:
                raise AssertionRefusedError("replayed", "this assertion was already used")
        return asserted

    def settle(
        self, asserted: ConsentAssertion, *, subject_ids: Sequence[str], now: float | None = None
    ) -> None:
        """The second half of :meth:`verify`: ``asserted`` names every one of
        ``subject_ids``; it is spent (a second use is refused as ``replayed``)."""
        uncovered = sum(1 for s in subject_ids if s not in asserted.grants)
        if uncovered:
            raise AssertionRefusedError(
                "subject_not_covered", f"{uncovered} requested subject(s) not in the assertion"
            )
        self._spend(asserted.token_id, asserted.expires_at, now=now)

    def _decode(self, token: str, *, now: float | None) -> dict[str, Any]:
        options: Any = {"require": ["exp", "iat", "aud", "iss", "jti"]}
        try:
            if now is None:
                return jwt.decode(  # type: ignore[no-any-return]
                    token, self._key, algorithms=["EdDSA"], audience=self.audience,
                    issuer=ISSUER, leeway=_LEEWAY_S, options=options,
                )  # fmt: skip
            claims = jwt.decode(
                token, self._key, algorithms=["EdDSA"], audience=self.audience, issuer=ISSUER,
                options={**options, "verify_exp": False, "verify_iat": False},
            )  # fmt: skip
        except jwt.InvalidSignatureError:
            raise AssertionRefusedError("bad_signature", "not signed by the coordinator") from None
        except jwt.ExpiredSignatureError:
            raise AssertionRefusedError("expired", "the assertion has expired") from None
        except jwt.InvalidAudienceError:
            raise AssertionRefusedError("wrong_audience", "issued for another party") from None
        except jwt.PyJWTError as exc:
            raise AssertionRefusedError("malformed", type(exc).__name__) from None
        if float(claims["exp"]) + _LEEWAY_S <= now:
            raise AssertionRefusedError("expired", "the assertion has expired")
        return claims  # type: ignore[no-any-return]

    def _spend(self, token_id: str, expires_at: float, *, now: float | None) -> None:
        """Accept each token once (its expiry bounds how long it must be remembered)."""
        at = time.time() if now is None else now
        with self._lock:
            while self._seen and next(iter(self._seen.values())) + _LEEWAY_S < at:
                self._seen.popitem(last=False)
            if token_id in self._seen:
                raise AssertionRefusedError("replayed", "this assertion was already used")
            self._seen[token_id] = expires_at
            if len(self._seen) > self._window:
                self._seen.popitem(last=False)
