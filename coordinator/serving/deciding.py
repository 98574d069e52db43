"""Deciding one application: score it (consent-gated, as ``/score``), then apply the model's
decision policy and record the decision, with every input it read, in the ledger.

The decision reads the score as the ledger recorded it, so ``fedrisk decide replay``
reproduces it from the ledger alone. The consent gate runs before this module: a subject
without an active grant gets 403 and neither a score nor a decision.
"""

from __future__ import annotations

from fastapi import HTTPException

from consent.deps import ConsentedSubjects
from coordinator.decisions.engine import (
    DecisionInputs,
    decide,
    model_age_days,
    score_as_recorded,
)
from coordinator.decisions.policy import APPLICATION_FIELDS, DecisionPolicy
from coordinator.decisions.records import decision_entry

from .catalog import ServedModel
from .schemas import DecisionReason, DecisionRequest, DecisionResponse
from .scoring import score_one
from .service import ServingState, request_hash

__all__ = ["check_figures", "decide_one"]


def check_figures(policy: DecisionPolicy, body: DecisionRequest) -> None:
    """422 for a figure the policy does not read (a typo would otherwise pass unseen)."""
    given = set(body.figures)
    unknown = sorted((given - set(policy.fields)) | (given & set(APPLICATION_FIELDS)))
    if unknown:
        readable = [f for f in policy.fields if f not in APPLICATION_FIELDS]
        raise HTTPException(
            status_code=422,
            detail={
                "reason": "unknown_figure",
                "message": f"policy {policy.name} {policy.version} reads no figures {unknown}; "
                f"it reads {readable} (amounts, limits and scores go in their own fields)",
            },
        )


async def decide_one(
    state: ServingState,
    model: ServedModel,
    policy: DecisionPolicy,
    consented: ConsentedSubjects,
    body: DecisionRequest,
) -> DecisionResponse:
    scored = await score_one(state, model, consented, request_id=body.request_id)
    figures: dict[str, float | None] = {name: None for name in policy.fields}
    figures.update(
        requested_amount=body.requested_amount,
        current_limit=body.current_limit,
        previous_score=body.previous_score,
    )
    figures.update(body.figures)
    inputs = DecisionInputs(
        score=score_as_recorded(scored.score),
        consent_allowed=True,
        consent_reason=None,
        model_version=model.version,
        model_age_days=model_age_days(model.created_at, consented.at),
        figures=figures,
    )
    decision = decide(policy, inputs)
    subject = state.pseudonym(scored.subject_id)
    entry = decision_entry(
        policy=policy,
        model=model.name,
        inputs=inputs,
        decision=decision,
        subject_pseudonym=subject,
        grant_id=scored.grant_id,
        app=consented.ask.app,
        at=consented.at,
        request_hash=request_hash(
            app=consented.ask.app,
            model=model.name,
            subject=subject,
            request_id=body.request_id,
            at=consented.at.isoformat(),
            scoring=scored.evidence_id,
        ),
    )
    (evidence,) = await state.writer.append([entry])
    state.metrics.decisions.labels(model.name, f"decision_{decision.outcome}").inc()
    return DecisionResponse(
        subject_id=scored.subject_id,
        outcome=decision.outcome,
        limit=decision.limit,
        previous_limit=decision.previous_limit,
        currency=policy.currency,
        score=scored.score,
        risk_band=scored.risk_band,
        reasons=[DecisionReason(code=r.code, text=r.text) for r in decision.reasons],
        reason_codes=scored.reason_codes,
        model=model.name,
        model_version=model.version,
        policy=policy.name,
        policy_version=policy.version,
        policy_digest=policy.digest,
        grant_id=scored.grant_id,
        scoring_evidence_id=scored.evidence_id,
        evidence_id=evidence,
    )
