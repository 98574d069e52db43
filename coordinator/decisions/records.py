"""What the evidence ledger keeps of decisions: the policy once, then each decision.

- ``decision_policy``: the whole policy as data (a policy is not personal), its digest,
  name and version, appended the first time a ledger sees that digest;
- ``lending_decision``: the subject's pseudonym, the policy's digest and version, the model
  version, every input the decision read (:class:`~.engine.DecisionInputs`: the score as
  recorded, the consent outcome and grant, the model's age, the application's figures the
  policy names) and the decision itself. Replaying it (:mod:`.replay`) needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from consent.ledger.entries import utc_timestamp
from consent.ledger.log import EvidenceLog

from .engine import Decision, DecisionInputs
from .errors import PolicyError
from .policy import DecisionPolicy

__all__ = ["DECISION_KIND", "POLICY_KIND", "decision_entry", "ensure_policy", "policy_entry"]

POLICY_KIND: Final = "decision_policy"
DECISION_KIND: Final = "lending_decision"


def policy_entry(policy: DecisionPolicy, *, at: datetime) -> dict[str, Any]:
    """The ledger body that makes ``policy`` replayable."""
    return {
        "kind": POLICY_KIND,
        "name": policy.name,
        "version": policy.version,
        "model": policy.model,
        "digest": policy.digest,
        "policy": policy.to_dict(),
        "at": utc_timestamp(at),
    }


def ensure_policy(ledger: EvidenceLog, policy: DecisionPolicy, *, at: datetime) -> str:
    """Append ``policy`` to ``ledger`` unless an entry with its digest is there; its
    evidence id either way. A policy whose name and version the ledger holds with other
    content is refused: a decision's version must name one policy only."""
    digest = policy.digest
    for index, body in ledger.indexed_bodies([POLICY_KIND]):
        if body.get("digest") == digest:
            return ledger.entry(index).evidence_id
        if (body.get("name"), body.get("version")) == (policy.name, policy.version):
            raise PolicyError(
                file=f"policy {policy.name}",
                key="policy.version",
                reason=f"version {policy.version} is already in the ledger with other content "
                f"(sha256 {str(body.get('digest'))[:12]}, this file {digest[:12]}): "
                "give the changed policy a new version",
            )
    return ledger.append(policy_entry(policy, at=at)).evidence_id


def decision_entry(
    *,
    policy: DecisionPolicy,
    model: str,
    inputs: DecisionInputs,
    decision: Decision,
    subject_pseudonym: str,
    grant_id: str | None,
    app: str,
    at: datetime,
    request_hash: str | None = None,
) -> dict[str, Any]:
    """One decision's ledger body: pseudonym and figures, never the subject's id."""
    return {
        "kind": DECISION_KIND,
        "subject": subject_pseudonym,
        "app": app,
        "request_hash": request_hash,
        "policy": policy.name,
        "policy_version": policy.version,
        "policy_digest": policy.digest,
        "model": model,
        "model_version": inputs.model_version,
        "grant_id": grant_id,
        "inputs": inputs.to_dict(),
        "decision": decision.to_dict(),
        "at": utc_timestamp(at),
    }


def recorded_inputs(body: Mapping[str, Any]) -> DecisionInputs:
    """The inputs a ``lending_decision`` body recorded."""
    return DecisionInputs.from_dict(body["inputs"])
