"""Scoring consented subjects: partial inference at the parties, combination, evidence.

Only subjects that passed the consent gate reach this module. Their ids go to the parties
that hold their features, with a signed assertion per party and chunk; the parties answer
partial outputs; the combiner (or, for a horizontal model, the node's own output) gives the
probability; reason codes come from the parties' occlusion outputs; each decision is then
appended to the evidence ledger, and its evidence id returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import HTTPException

from consent.deps import ConsentedSubjects
from models.scoring import risk_bands

from .catalog import Reason, ServedModel
from .fanout import PartyAnswer, PartyError
from .schemas import BatchItem, BatchRefusal, BatchRequest, BatchResponse, ReasonCode, ScoreResponse
from .service import ServingState

__all__ = ["score_batch", "score_one"]

#: Subjects per partial-inference call (one assertion each) in a batch.
CHUNK = 2_000
#: Parallel partial-inference calls in flight per batch.
PARALLEL = 4
#: Seconds a caller is asked to wait after a participant was unavailable (``Retry-After``).
RETRY_AFTER_S = 5


def _party_error(exc: PartyError) -> HTTPException:
    """503 (with ``Retry-After``) when a party is down, slow or answers nothing usable; 502
    when it refused the call. No score is computed from the parties that did answer."""
    unavailable = exc.status >= 500
    return HTTPException(
        status_code=503 if unavailable else 502,
        detail={
            "reason": "participant_unavailable" if unavailable else "participant_refused",
            "party": exc.party,
            "cause": exc.cause,
            "message": f"{exc}; no score was computed, try again later",
        },
        headers={"Retry-After": str(RETRY_AFTER_S)} if unavailable else None,
    )


def _codes(reasons: Sequence[Reason]) -> list[ReasonCode]:
    return [
        ReasonCode(feature=r.feature, text=r.text, party=r.party, contribution=r.contribution)
        for r in reasons
    ]


async def _partials(
    state: ServingState, model: ServedModel, grants: Mapping[str, str], *, explain: bool
) -> tuple[dict[str, dict[str, PartyAnswer]], list[str]]:
    """For each subject: the answer of each party that scored it; and subjects no node has."""
    fanout = state.fanout
    if model.mode == "vertical":
        answers = await fanout.vertical(model, grants, explain=explain)
        return {s: {a.party: a for a in answers} for s in grants}, []
    found, unknown = await fanout.horizontal(model, grants, explain=explain)
    return {s: {a.party: a} for s, a in found.items()}, unknown


def _scores(
    model: ServedModel, subjects: Sequence[str], answers: Mapping[str, Mapping[str, PartyAnswer]]
) -> np.ndarray:
    if not subjects:
        return np.zeros(0)
    if model.mode == "vertical":
        parties = answers[subjects[0]]
        outputs = {p: np.array([answers[s][p].outputs[s] for s in subjects]) for p in parties}
        return model.combine(outputs)
    scores = np.empty(len(subjects))
    for k, s in enumerate(subjects):
        (answer,) = answers[s].values()
        scores[k] = model.combine(
            {answer.party: np.array([answer.outputs[s]])}, kind=answer.output_kind
        )[0]
    return scores


def _reasons(
    model: ServedModel, subject: str, answers: Mapping[str, PartyAnswer], score: float
) -> list[Reason]:
    outputs = {p: np.asarray(a.outputs[subject]) for p, a in answers.items()}
    occluded = {p: a.occluded.get(subject, {}) for p, a in answers.items()}
    levels = {p: a.levels.get(subject, {}) for p, a in answers.items()}
    kind = next(iter(answers.values())).output_kind
    return model.explain(outputs, occluded, score=score, kind=kind, levels=levels)


async def score_one(
    state: ServingState, model: ServedModel, consented: ConsentedSubjects, *, request_id: str | None
) -> ScoreResponse:
    ((subject, grant_id),) = consented.grants.items()
    try:
        answers, unknown = await _partials(state, model, consented.grants, explain=True)
    except PartyError as exc:
        raise _party_error(exc) from None
    if unknown:
        raise HTTPException(
            status_code=404,
            detail={
                "reason": "unknown_subject",
                "message": f"no node of {model.name} holds data for this subject",
            },
        )
    score = float(_scores(model, [subject], answers)[0])
    reasons = _reasons(model, subject, answers[subject], score)
    body = state.decision(
        app=consented.ask.app,
        model=model.name,
        version=model.version,
        subject_id=subject,
        request_id=request_id,
        at=consented.at,
        score=score,
        grant_id=grant_id,
        outcome="scored",
    )
    (evidence,) = await state.writer.append([body])
    state.metrics.decisions.labels(model.name, "scored").inc()
    return ScoreResponse(
        subject_id=subject,
        model=model.name,
        model_version=model.version,
        score=score,
        risk_band=model.band(score),
        reason_codes=_codes(reasons),
        grant_id=grant_id,
        evidence_id=evidence,
    )


async def score_batch(
    state: ServingState, model: ServedModel, consented: ConsentedSubjects, body: BatchRequest
) -> BatchResponse:
    subjects = list(consented.grants)
    limit = asyncio.Semaphore(PARALLEL)

    async def chunk(part: list[str]) -> tuple[dict[str, dict[str, PartyAnswer]], list[str]]:
        async with limit:
            return await _partials(
                state, model, {s: consented.grants[s] for s in part}, explain=body.reason_codes
            )

    # All or nothing: the first chunk a party fails cancels the others, and the batch
    # answers that party's error instead of a partial portfolio.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(chunk(subjects[i : i + CHUNK]))
                for i in range(0, len(subjects), CHUNK)
            ]
    except BaseExceptionGroup as failed:
        errors = [e for e in failed.exceptions if isinstance(e, PartyError)]
        if errors:
            raise _party_error(errors[0]) from None
        raise
    done = [task.result() for task in tasks]
    answers: dict[str, dict[str, PartyAnswer]] = {}
    unknown: list[str] = []
    for found, missing in done:
        answers.update(found)
        unknown.extend(missing)
    scored = [s for s in subjects if s in answers]
    scores = _scores(model, scored, answers)
    at = consented.at

    def decision(subject: str, **outcome: Any) -> dict[str, Any]:
        return state.decision(
            app=consented.ask.app,
            model=model.name,
            version=model.version,
            subject_id=subject,
            request_id=body.request_id,
            at=at,
            **outcome,
        )

    decisions = [
        decision(s, score=float(p), grant_id=consented.grants[s], outcome="scored")
        for s, p in zip(scored, scores, strict=True)
    ] + [
        decision(s, score=None, grant_id=None, outcome="refused", reason=reason)
        for s, reason in consented.refused.items()
    ]
    evidence = await state.writer.append(decisions)
    state.metrics.decisions.labels(model.name, "scored").inc(len(scored))
    state.metrics.decisions.labels(model.name, "refused").inc(len(consented.refused))
    for reason in consented.refused.values():
        state.metrics.refusals.labels(reason).inc()
    bands = risk_bands(scores)
    results = [
        BatchItem(
            subject_id=s,
            score=float(p),
            risk_band=str(bands[k]),
            grant_id=consented.grants[s],
            evidence_id=evidence[k],
            reason_codes=_codes(_reasons(model, s, answers[s], float(p)))
            if body.reason_codes
            else [],
        )
        for k, (s, p) in enumerate(zip(scored, scores, strict=True))
    ]
    refusals = [
        BatchRefusal(subject_id=s, reason=r, evidence_id=evidence[len(scored) + k])
        for k, (s, r) in enumerate(consented.refused.items())
    ]
    return BatchResponse(
        model=model.name,
        model_version=model.version,
        results=results,
        refused=refusals,
        unknown=unknown,
    )
