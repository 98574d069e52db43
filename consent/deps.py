"""The consent gate of every scoring route: a FastAPI dependency that fails closed.

A route declares ``subjects: Annotated[ConsentedSubjects, Depends(gate.single)]``; the gate
reads the route's :class:`ScoringAsk` (who asks, for whom, for which model and data
categories) from a dependency the API layer provides, asks the consent registry *now* (no
cache: a withdrawal counts on the next request; on the event loop for a few subjects in a
local store, else in a worker thread) and either returns the grant covering each
subject or refuses with 403 and a machine-readable reason, after recording the refusal
through ``on_refusal`` (the ledger and the logs). The route body, and so the model, never
runs for a refused subject. Any error while deciding is a refusal too (503), never a pass.

This module does not use postponed annotations: FastAPI reads the dependency signatures
built here at run time, from closures.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from consent.eligibility import ConsentDecision
from consent.errors import ConsentError
from consent.registry import ConsentRegistry

__all__ = ["ConsentGate", "ConsentedSubjects", "ScoringAsk"]

logger = logging.getLogger(__name__)

SCORING_PURPOSE = "credit_scoring"
#: Checks of at most this many subjects against a local store run on the event loop (a
#: fraction of a millisecond); larger ones, and any on a networked store, in a thread.
INLINE_SUBJECTS = 16


@dataclass(frozen=True)
class ScoringAsk:
    """One scoring call, as the consent gate sees it."""

    app: str
    institution: str
    model: str
    categories: frozenset[str]
    subject_ids: tuple[str, ...]
    #: What the API passes through to the route (the parsed request body).
    request: object = None


@dataclass(frozen=True)
class ConsentedSubjects:
    """Subjects that may be scored (with their grant) and, for batches, those that may not."""

    ask: ScoringAsk
    grants: dict[str, str]
    refused: dict[str, str]
    at: datetime


RefusalHook = Callable[[ScoringAsk, str, ConsentDecision], str | None]


class ConsentGate:
    """Builds the consent dependencies for one API: ``single`` refuses the whole call,
    ``batch`` drops refused subjects and reports them."""

    def __init__(
        self,
        *,
        ask: Callable[..., Any],
        registry: Callable[[], ConsentRegistry],
        on_refusal: RefusalHook,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ask = ask
        self._registry = registry
        self._on_refusal = on_refusal
        self._clock = clock
        self.single = self._single()
        self.batch = self._batch()

    async def _decide(self, ask: ScoringAsk, registry: ConsentRegistry) -> ConsentedSubjects:
        at = self._clock()
        store = registry.store

        def decide_now() -> dict[str, ConsentDecision]:
            return store.decide_many(
                list(ask.subject_ids),
                purpose=SCORING_PURPOSE,
                categories=ask.categories,
                at=at,
                institution=ask.institution,
            )

        try:
            inline = store.reads_inline and len(ask.subject_ids) <= INLINE_SUBJECTS
            decisions = decide_now() if inline else await run_in_threadpool(decide_now)
        except ConsentError as exc:
            logger.error("consent check failed (%s): refusing", type(exc).__name__)
            raise HTTPException(
                status_code=503,
                detail={"reason": "consent_unavailable", "message": "try again shortly"},
            ) from None
        grants: dict[str, str] = {}
        refused: dict[str, ConsentDecision] = {}
        for subject, decision in decisions.items():
            if decision.allowed and decision.grant_id is not None:
                grants[subject] = decision.grant_id
            else:
                refused[subject] = decision
        if refused:  # recording refusals writes (and syncs) the ledger: off the event loop
            await run_in_threadpool(self._record_refusals, ask, refused)
        reasons: dict[str, str] = {s: d.reason or "never_granted" for s, d in refused.items()}
        return ConsentedSubjects(ask=ask, grants=grants, refused=reasons, at=at)

    def _record_refusals(self, ask: ScoringAsk, refused: dict[str, ConsentDecision]) -> None:
        for subject, decision in refused.items():
            self._on_refusal(ask, subject, decision)

    def _single(self) -> Callable[..., Awaitable[ConsentedSubjects]]:
        async def require_consent(
            ask: Annotated[ScoringAsk, Depends(self._ask)],
        ) -> ConsentedSubjects:
            consented = await self._decide(ask, self._registry())
            if consented.refused:
                reason = next(iter(consented.refused.values()))
                raise HTTPException(
                    status_code=403,
                    detail={
                        "reason": reason,
                        "message": "the subject has no active credit_scoring consent to your "
                        "institution covering this model's data; the model was not run",
                    },
                )
            return consented

        return require_consent

    def _batch(self) -> Callable[..., Awaitable[ConsentedSubjects]]:
        async def consented_subjects(
            ask: Annotated[ScoringAsk, Depends(self._ask)],
        ) -> ConsentedSubjects:
            return await self._decide(ask, self._registry())

        return consented_subjects
