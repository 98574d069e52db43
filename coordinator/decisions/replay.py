"""Replaying every decision in an evidence ledger against the policy it names.

Each ``lending_decision`` entry is decided again, from its recorded inputs only, by the
policy whose digest it names (read from the same ledger, its digest recomputed so that an
altered policy entry cannot pass), and the result is compared with the recorded decision
as canonical JSON: equal means reproduced exactly. Together with ``fedrisk ledger verify``
(no entry altered or dropped) this shows a court how each decision was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consent.ledger.log import EvidenceLog

from .engine import decide
from .errors import DecisionError
from .policy import DecisionPolicy, canonical, policy_from_dict
from .records import DECISION_KIND, POLICY_KIND, recorded_inputs

__all__ = ["Mismatch", "ReplayReport", "replay_ledger"]


@dataclass(frozen=True)
class Mismatch:
    """A decision that did not come out as recorded, and why."""

    evidence_id: str
    problem: str


@dataclass(frozen=True)
class ReplayReport:
    decisions: int
    reproduced: int
    policies: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Reproduced decisions over all decisions (1.0 for a ledger without any)."""
        return self.reproduced / self.decisions if self.decisions else 1.0

    @property
    def ok(self) -> bool:
        return self.reproduced == self.decisions


def replay_ledger(
    ledger: EvidenceLog,
    *,
    keep: int = 20,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Replay every decision in ``ledger``; at most ``keep`` mismatches are listed."""
    policies: dict[str, DecisionPolicy] = {}
    bad_policies: dict[str, str] = {}
    decisions = reproduced = 0
    mismatches: list[Mismatch] = []
    for index, body in ledger.indexed_bodies([POLICY_KIND, DECISION_KIND]):
        if body["kind"] == POLICY_KIND:
            digest = str(body.get("digest"))
            try:
                policy = policy_from_dict(body["policy"], source=f"ledger entry {index}")
            except (DecisionError, KeyError, TypeError) as exc:
                bad_policies[digest] = f"the policy entry is unreadable: {exc}"
                continue
            if policy.digest != digest:
                bad_policies[digest] = "the policy entry's content does not match its digest"
                continue
            policies[digest] = policy
            continue
        decisions += 1
        problem = _replay_one(body, policies, bad_policies)
        if problem is None:
            reproduced += 1
        elif len(mismatches) < keep:
            mismatches.append(Mismatch(ledger.entry(index).evidence_id, problem))
        if progress is not None and decisions % 10_000 == 0:
            progress(decisions)
    return ReplayReport(
        decisions=decisions, reproduced=reproduced, policies=len(policies), mismatches=mismatches
    )


def _replay_one(body: dict, policies: dict[str, DecisionPolicy], bad: dict[str, str]) -> str | None:
    digest = str(body.get("policy_digest"))
    policy = policies.get(digest)
    if policy is None:
        return bad.get(digest, f"policy {digest[:12]} is not in the ledger before this decision")
    try:
        again = decide(policy, recorded_inputs(body)).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        return f"the recorded inputs are unreadable: {exc}"
    if canonical(again) != canonical(body["decision"]):
        return f"replayed {again['outcome']} {again['limit']:g}, recorded " + (
            f"{body['decision'].get('outcome')} {body['decision'].get('limit')}"
        )
    return None
