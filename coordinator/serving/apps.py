"""Lending apps and their credentials: who may call the scoring API, for what, how often.

Each app has a client id, the institution it acts for (consent is checked against grants to
that institution), scopes (``score:<model>``, ``score:*``, ``consent:write``,
``consent:read``, ``evidence:read``) and a quota (requests per second with a burst). The
client secret is shown once when the app is added; only its scrypt hash is kept
(``apps.json``, mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from privacy._files import atomic_write_bytes

__all__ = ["AppRegistry", "LendingApp", "SCOPE_PATTERN", "SECRET_PREFIX", "new_client_secret"]

SCOPE_PATTERN = re.compile(
    r"^(score:[A-Za-z0-9_.*-]+|consent:(read|write)|evidence:read|alerts:(read|write)|monitoring:report)$"
)
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
#: Every client secret starts with this: it never begins with "-" (which a command line
#: would read as an option: ``--app-secret -x…``) and secret scanners can recognise it.
SECRET_PREFIX = "frsk_"


def _hash(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def new_client_secret() -> str:
    """A fresh client secret: the prefix, then 256 random bits in URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class LendingApp:
    """One registered app."""

    client_id: str
    institution: str
    scopes: tuple[str, ...]
    rate_per_s: float
    burst: int
    secret_hash: str

    def allows(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return scope.startswith("score:") and "score:*" in self.scopes


class AppRegistry:
    """The apps file of one scoring service."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._apps: dict[str, LendingApp] = {}
        self._loaded: int | None = None
        self._verified: dict[tuple[str, str], bool] = {}
        self._refresh()

    def _refresh(self) -> None:
        """Re-read the file if it changed (`fedrisk apps add` while the service runs)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._loaded:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._apps = {
            a["client_id"]: LendingApp(**{**a, "scopes": tuple(a["scopes"])}) for a in data["apps"]
        }
        self._loaded = mtime

    def __contains__(self, client_id: str) -> bool:
        return client_id in self._apps

    def get(self, client_id: str) -> LendingApp | None:
        self._refresh()
        return self._apps.get(client_id)

    def list(self) -> list[LendingApp]:
        return sorted(self._apps.values(), key=lambda a: a.client_id)

    def add(
        self,
        client_id: str,
        *,
        institution: str,
        scopes: Iterable[str],
        rate_per_s: float = 50.0,
        burst: int = 100,
    ) -> str:
        """Register an app and return its client secret (shown once, never stored)."""
        if not _ID_PATTERN.match(client_id):
            raise ValueError(f"client id must be 2-63 of a-z, 0-9 and '-', got {client_id!r}")
        self._refresh()
        if client_id in self._apps:
            raise ValueError(f"app {client_id!r} already exists")
        scopes = tuple(sorted(set(scopes)))
        bad = [s for s in scopes if not SCOPE_PATTERN.match(s)]
        if bad or not scopes:
            raise ValueError(
                f"unknown scopes {bad}; use score:<model>, score:*, "
                "consent:read, consent:write, evidence:read, alerts:read, alerts:write, "
                "monitoring:report"
            )
        if not rate_per_s > 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst >= 1, got {rate_per_s}, {burst}")
        secret = new_client_secret()
        self._apps[client_id] = LendingApp(
            client_id=client_id,
            institution=institution,
            scopes=scopes,
            rate_per_s=float(rate_per_s),
            burst=int(burst),
            secret_hash=_hash(secret, secrets.token_bytes(16)),
        )
        self._save()
        return secret

    def revoke(self, client_id: str) -> None:
        """Remove an app: its secret no longer authenticates (tokens issued before stay
        valid until they expire)."""
        self._refresh()
        if client_id not in self._apps:
            known = ", ".join(sorted(self._apps)) or "none"
            raise ValueError(f"no app {client_id!r}; registered apps: {known}")
        del self._apps[client_id]
        self._verified = {k: v for k, v in self._verified.items() if k[0] != client_id}
        self._save()

    def authenticate(self, client_id: str, secret: str) -> LendingApp | None:
        """The app if ``secret`` is its client secret (constant-time), else ``None``."""
        app = self.get(client_id)
        if app is None:
            _hash(secret, b"\0" * 16)  # same work for unknown ids
            return None
        key = (client_id, hashlib.sha256(secret.encode()).hexdigest())
        if key in self._verified:  # only successes are remembered (scrypt is slow on purpose)
            return app
        _, salt, _ = app.secret_hash.split("$")
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(salt)), app.secret_hash):
            return None
        self._verified[key] = True
        return app

    def _save(self) -> None:
        data = {"apps": [asdict(a) for a in self.list()]}
        atomic_write_bytes(self.path, json.dumps(data, indent=2).encode(), mode=0o600)
