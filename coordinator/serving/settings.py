"""Settings of the scoring service (``FEDRISK_COORD_`` environment variables or a TOML file)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings"]


class ServeSettings(BaseSettings):
    """Where the service keeps its state and whom it calls. Secrets (signing keys, token
    secret, pseudonym key, app secrets' hashes) live in ``state_dir``, mode 0600; none has a
    default value."""

    model_config = SettingsConfigDict(env_prefix="FEDRISK_COORD_", extra="forbid")

    state_dir: Path = Path("fedrisk-demo/serving")
    registry: Path = Path("fedrisk-demo/runs/registry")
    #: The consent store as a SQLAlchemy URL, e.g. ``postgresql+psycopg://user:pw@host/db``
    #: for production (``FEDRISK_COORD_CONSENT_DATABASE_URL``); default: SQLite
    #: ``consent.db`` in ``state_dir``.
    consent_database_url: str | None = None
    #: The evidence ledger (default: beside the registry, where publication records models).
    ledger_dir: Path | None = None
    #: Decision policies, one TOML file per model (default: ``policies`` beside
    #: ``state_dir``); ``POST /v1/models/{model}/decide`` applies the model's.
    policies_dir: Path | None = None
    #: Participant name -> base URL of its partial-inference service.
    participants: dict[str, str] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8080
    token_ttl_s: int = 300
    assertion_ttl_s: float = 30.0
    participant_timeout_s: float = 10.0
    #: The data controller named on consent receipts.
    controller_name: str = "Demo Rural Commercial Bank"
    controller_contact: str = "Data Protection Officer"
    controller_email: str = "privacy@bank.example"
    policy_url: str = "https://bank.example/privacy"

    @classmethod
    def for_root(cls, root: Path, **overrides: Any) -> ServeSettings:
        """The layout of ``fedrisk demo`` and ``fedrisk serve ROOT``: state under
        ROOT/serving, the registry (and beside it the ledger) under ROOT/runs."""
        layout: dict[str, Any] = {
            "state_dir": root / "serving",
            "registry": root / "runs" / "registry",
        }
        return cls(**(layout | overrides))

    @property
    def ledger_folder(self) -> Path:
        """Where the evidence ledger is: ``ledger_dir``, else beside the registry."""
        return self.ledger_dir or self.registry.parent / "ledger"

    @classmethod
    def from_toml(cls, path: Path) -> ServeSettings:
        with open(path, "rb") as handle:
            return cls(**tomllib.load(handle))
