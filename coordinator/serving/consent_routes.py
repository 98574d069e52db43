"""The consent API for the bank's channels: grant, withdraw, list, receipt.

A channel app acts for one institution: it records grants *to that institution* only and
sees only the grants made to it (OWASP API1: no object of another institution is ever
readable or writable, and asking for one answers 404, as for an id that does not exist).

No postponed annotations here: FastAPI reads the route signatures built in
:func:`add_consent_routes` at run time.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path

from consent.errors import (
    ConsentError,
    GrantAlreadyWithdrawnError,
    InvalidGrantError,
    UnknownGrantError,
)
from consent.grants import GrantState

from .authorization import Authorization
from .schemas import ConsentGrantRequest, ConsentGrantResponse, ConsentState, WithdrawResponse
from .service import ServingState
from .tokens import Caller

__all__ = ["add_consent_routes"]

GrantIdPath = Annotated[str, Path(max_length=64)]
SubjectPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _view(state: GrantState, at: datetime) -> ConsentState:
    g = state.grant
    return ConsentState(
        grant_id=g.grant_id,
        purpose=g.purpose,
        categories=sorted(g.categories),
        starts_at=g.starts_at,
        expires_at=g.expires_at,
        withdrawn_at=state.withdrawn_at,
        status=state.status_at(at),
    )


def add_consent_routes(app: FastAPI, state: ServingState, *, auth: Authorization) -> None:
    """Mount the consent routes on ``app``."""

    def own_grant(grant_id: str, who: Caller) -> GrantState:
        try:
            found = state.consent.state(grant_id)
        except UnknownGrantError:
            found = None
        if found is None or found.grant.institution != who.institution:
            raise HTTPException(
                status_code=404, detail={"reason": "unknown_grant", "message": "no such grant"}
            )
        return found

    def grant(body: ConsentGrantRequest, who: Caller) -> ConsentGrantResponse:
        try:
            recorded = state.consent.grant(
                subject_id=body.subject_id,
                institution=who.institution,
                purpose=body.purpose,
                categories=body.categories,
                starts_at=body.starts_at,
                expires_at=body.expires_at,
                evidence_hash=body.evidence_hash,
                channel=body.channel,
            )
        except InvalidGrantError as exc:
            raise HTTPException(
                status_code=422, detail={"reason": "invalid_grant", "message": str(exc)}
            ) from None
        assert recorded.receipt is not None
        return ConsentGrantResponse(
            grant_id=recorded.event.grant_id,
            evidence_id=recorded.evidence_id,
            receipt=recorded.receipt,
        )

    def withdraw(grant_id: str, who: Caller) -> WithdrawResponse:
        own_grant(grant_id, who)
        try:
            recorded = state.consent.withdraw(grant_id)
        except GrantAlreadyWithdrawnError:
            raise HTTPException(
                status_code=409,
                detail={
                    "reason": "already_withdrawn",
                    "message": "this grant was already withdrawn",
                },
            ) from None
        return WithdrawResponse(
            grant_id=grant_id, withdrawn_at=recorded.event.at, evidence_id=recorded.evidence_id
        )

    def subject_grants(subject_id: str, who: Caller) -> list[ConsentState]:
        now = datetime.now(UTC)
        return [
            _view(s, now)
            for s in state.consent.grants_of(subject_id)
            if s.grant.institution == who.institution
        ]

    def receipt(grant_id: str, who: Caller) -> dict[str, Any]:
        own_grant(grant_id, who)
        try:
            return state.consent.receipt(grant_id)
        except ConsentError:
            raise HTTPException(status_code=404, detail={"reason": "unknown_grant"}) from None

    Writer = Annotated[Caller, auth.requires("consent:write")]
    Reader = Annotated[Caller, auth.requires("consent:read")]

    @app.post(
        "/v1/consents",
        response_model=ConsentGrantResponse,
        status_code=201,
        tags=["consent"],
        responses={401: {}, 403: {}, 422: {}, 429: {}},
    )
    def post_grant(body: ConsentGrantRequest, who: Writer) -> ConsentGrantResponse:
        """Record a subject's grant to the caller's institution; returns its Kantara receipt
        and the evidence id of the grant in the ledger."""
        return grant(body, who)

    @app.post(
        "/v1/consents/{grant_id}/withdraw",
        response_model=WithdrawResponse,
        tags=["consent"],
        responses={401: {}, 403: {}, 404: {}, 409: {}, 429: {}},
    )
    def post_withdraw(grant_id: GrantIdPath, who: Writer) -> WithdrawResponse:
        """Withdraw a grant, effective now (one call; earlier decisions stay valid)."""
        return withdraw(grant_id, who)

    @app.get(
        "/v1/subjects/{subject_id}/consents",
        response_model=list[ConsentState],
        tags=["consent"],
        responses={401: {}, 403: {}, 429: {}},
    )
    def get_subject_grants(subject_id: SubjectPath, who: Reader) -> list[ConsentState]:
        """The subject's grants to the caller's institution, with their status now."""
        return subject_grants(subject_id, who)

    @app.get(
        "/v1/consents/{grant_id}/receipt",
        tags=["consent"],
        responses={401: {}, 403: {}, 404: {}, 429: {}},
    )
    def get_receipt(grant_id: GrantIdPath, who: Reader) -> dict[str, Any]:
        """The grant's Kantara v1.1 consent receipt."""
        return receipt(grant_id, who)
