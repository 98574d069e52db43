"""Everything one scoring service holds, built once from its settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coordinator.monitoring.webhooks import Outbox
from prometheus_client import CollectorRegistry, Counter, Histogram

from consent.assertions import AssertionSigner
from consent.ledger.entries import Pseudonymizer, scoring_decision_entry, sha256_hex
from consent.ledger.log import canonical_json
from consent.receipts import Controller
from consent.registry import ConsentRegistry
from consent.store import SQLAlchemyConsentStore
from coordinator.decisions.policy import DecisionPolicy, load_policies
from coordinator.decisions.records import ensure_policy
from coordinator.monitoring.alerts import MONITORED_MODEL, AlertDesk
from coordinator.monitoring.loans import LoanBook
from models.registry import ModelRegistry
from models.specs import MODEL_SPECS

from .apps import AppRegistry
from .catalog import Catalog
from .fanout import FanOut
from .ledger_writer import LedgerWriter
from .quotas import Quotas
from .settings import ServeSettings
from .tokens import TokenIssuer

__all__ = ["Metrics", "ServingState", "consent_registry", "request_hash"]

logger = logging.getLogger(__name__)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fedrisk_requests_total", "API requests", ["route", "status"], registry=self.registry
        )
        self.decisions = Counter(
            "fedrisk_scoring_decisions_total",
            "Scoring decisions by outcome",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "fedrisk_consent_refusals_total",
            "Consent refusals by reason",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fedrisk_request_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
        )


def consent_registry(settings: ServeSettings) -> ConsentRegistry:
    """The consent store and evidence ledger ``settings`` name (what the API, and every
    command that must agree with it, such as ``fedrisk decide``, reads and writes)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        name=settings.controller_name,
        contact=settings.controller_contact,
        email=settings.controller_email,
        policy_url=settings.policy_url,
    )
    url = settings.consent_database_url
    return ConsentRegistry.in_folder(
        settings.state_dir,
        controller=controller,
        ledger_dir=settings.ledger_folder,
        store=SQLAlchemyConsentStore(url) if url else None,
    )


def request_hash(**fields: Any) -> str:
    """SHA-256 of a request's canonical JSON (what the ledger keeps of it)."""
    return sha256_hex(canonical_json(fields))


@dataclass
class ServingState:
    settings: ServeSettings
    consent: ConsentRegistry
    pseudonym: Pseudonymizer
    apps: AppRegistry
    tokens: TokenIssuer
    quotas: Quotas
    catalog: Catalog
    fanout: FanOut
    metrics: Metrics
    writer: LedgerWriter
    #: Decision policy of each model that has one, by model name.
    policies: Mapping[str, DecisionPolicy] = field(default_factory=dict)
    #: Post-loan monitoring: factory nodes' events -> lenders' alerts and webhooks.
    monitoring: AlertDesk | None = None

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> ServingState:
        state = settings.state_dir
        consent = consent_registry(settings)
        policies = load_policies(settings.policies_dir or state.parent / "policies")
        for policy in policies.values():  # a decision's policy precedes it in the ledger
            ensure_policy(consent.ledger, policy, at=datetime.now(UTC))
        return cls(
            settings=settings,
            consent=consent,
            pseudonym=consent.pseudonym,
            apps=AppRegistry(state / "apps.json"),
            tokens=TokenIssuer.in_folder(state, ttl_s=settings.token_ttl_s),
            quotas=Quotas(),
            catalog=Catalog(ModelRegistry(settings.registry)),
            fanout=FanOut(
                settings.participants,
                signer=AssertionSigner.in_folder(state),
                assertion_ttl_s=settings.assertion_ttl_s,
                timeout_s=settings.participant_timeout_s,
            ),
            metrics=Metrics(),
            writer=LedgerWriter(consent.ledger),
            policies=policies,
            monitoring=AlertDesk(
                ledger=consent.ledger,
                consent=consent,
                loans=LoanBook(state / "monitoring.sqlite"),
                outbox=Outbox(state / "webhooks.sqlite"),
                categories=MODEL_SPECS[MONITORED_MODEL].data_categories,
                model=MONITORED_MODEL,
            ),
        )

    def record_decisions(self, decisions: list[dict[str, Any]]) -> list[str]:
        """Append scoring decisions (or refusals) to the ledger; their evidence ids."""
        return [e.evidence_id for e in self.consent.ledger.append_many(decisions)]

    def decision(
        self,
        *,
        app: str,
        model: str,
        version: str,
        subject_id: str,
        request_id: str | None,
        at: datetime,
        score: float | None,
        grant_id: str | None,
        outcome: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The ledger body of one decision: hashes and the subject's pseudonym only."""
        subject = self.pseudonym(subject_id)
        digest = request_hash(
            app=app, model=model, subject=subject, request_id=request_id, at=at.isoformat()
        )
        return scoring_decision_entry(
            request_hash=digest,
            subject_pseudonym=subject,
            model=model,
            model_version=version,
            score=score,
            grant_id=grant_id,
            app=app,
            outcome=outcome,
            reason=reason,
            at=at,
        )
