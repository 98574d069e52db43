"""The coordinator's scoring and consent API (FastAPI): ``create_app(state)``.

- ``POST /v1/oauth/token``: OAuth 2.0 client credentials -> a short-lived bearer JWT;
- ``POST /v1/models/{model}/score`` (one subject) and ``/score/batch`` (portfolio runs):
  scope ``score:<model>``, the app's quota (429), the consent gate (403, the model never
  runs), partial inference at every party over HTTP, then score, band, reason codes, model
  version and the evidence id of the decision in the ledger;
- ``POST /v1/models/{model}/decide``: the same for one application, then the model's
  decision policy (approve / refer / decline, limit, credit increase) and its evidence;
- ``/v1/consents...``: the bank channels' consent API (scopes ``consent:write|read``),
  always within the caller's own institution;
- ``POST /v1/monitoring/events`` (a factory node's change event), ``GET /v1/alerts`` and
  ``PUT /v1/webhook``: post-loan alerts for the lender, in the ledger and to its signed
  webhook (retried until taken);
- ``GET /v1/evidence/{id}``: an evidence certificate (scope ``evidence:read``, only of the
  caller's own decisions or its institution's consent events); ``GET /v1/ledger/head``;
- ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus).

This module does not use postponed annotations: FastAPI reads the signatures of the
dependencies defined here, inside :func:`create_app`, at run time.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from coordinator.monitoring.webhooks import Deliverer
from fastapi import Depends, FastAPI, Form, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consent.api_app import api_app
from consent.deps import ConsentedSubjects, ConsentGate, ScoringAsk
from consent.eligibility import ConsentDecision
from consent.errors import ConsentError, PurgedEvidenceError, UnknownEvidenceError
from consent.ledger import Entry
from consent.ledger.certificate import make_certificate
from consent.ledger.entries import review_request_entry
from consent.registry import ConsentRegistry

from .authorization import TOKEN_URL, Authorization, api_error, client_credentials
from .catalog import ServedModel
from .consent_routes import add_consent_routes
from .deciding import check_figures, decide_one
from .monitoring_routes import add_monitoring_routes
from .schemas import (
    BatchRequest,
    BatchResponse,
    DecisionRequest,
    DecisionResponse,
    ModelInfo,
    ScoreRequest,
    ScoreResponse,
    TokenResponse,
)
from .scoring import score_batch, score_one
from .service import ServingState
from .tokens import Caller

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

ModelName = Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


def create_app(state: ServingState) -> FastAPI:
    """The API over ``state`` (see the module docstring)."""
    app = api_app(title="fedrisk scoring and consent API", description=__doc__ or "")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse(
            status_code=422, content={"detail": {"reason": "invalid_request", "errors": errors}}
        )

    app.add_middleware(_Measure, state=state)

    # --- authentication, scopes, quotas (decided before any body is read) -------------

    auth = Authorization(state)

    def served_for(model: str) -> ServedModel:
        found = state.catalog.get(model)
        if found is None:
            raise api_error(404, "unknown_model", f"no servable model {model!r}: GET /v1/models")
        return found

    def ask_for(model: str, who: Caller, subject_ids: tuple[str, ...], body: object) -> ScoringAsk:
        found = served_for(model)
        return ScoringAsk(
            app=who.client_id,
            institution=who.institution,
            model=found.name,
            categories=found.categories,
            subject_ids=subject_ids,
            request=body,
        )

    Scorer = Annotated[Caller, auth.requires("score:{model}")]

    async def single_ask(model: ModelName, body: ScoreRequest, who: Scorer) -> ScoringAsk:
        return ask_for(model, who, (body.subject_id,), body)

    async def decision_ask(model: ModelName, body: DecisionRequest, who: Scorer) -> ScoringAsk:
        ask = ask_for(model, who, (body.subject_id,), body)
        policy = state.policies.get(ask.model)
        if policy is None:
            raise api_error(
                404, "no_policy", f"no decision policy for {ask.model}: score it with /score"
            )
        check_figures(policy, body)
        return ask

    async def batch_ask(model: ModelName, body: BatchRequest, who: Scorer) -> ScoringAsk:
        return ask_for(model, who, tuple(dict.fromkeys(body.subject_ids)), body)

    def refused(ask: ScoringAsk, subject: str, decision: ConsentDecision) -> str | None:
        reason = decision.reason or "never_granted"
        state.metrics.refusals.labels(reason).inc()
        state.metrics.decisions.labels(ask.model, "refused").inc()
        found = state.catalog.get(ask.model)
        body = state.decision(
            app=ask.app,
            model=ask.model,
            version=found.version if found else "",
            at=_now(),
            subject_id=subject,
            request_id=None,
            score=None,
            grant_id=None,
            outcome="refused",
            reason=reason,
        )
        logger.info(
            "refused %s for %s: %s (subject %s)", ask.model, ask.app, reason, body["subject"][:12]
        )
        (evidence,) = state.record_decisions([body])
        return evidence

    def registry() -> ConsentRegistry:
        return state.consent

    single_gate = ConsentGate(ask=single_ask, registry=registry, on_refusal=refused)
    decision_gate = ConsentGate(ask=decision_ask, registry=registry, on_refusal=refused)
    batch_gate = ConsentGate(ask=batch_ask, registry=registry, on_refusal=lambda *a: None)

    # --- routes -----------------------------------------------------------------------

    @app.post(TOKEN_URL, response_model=TokenResponse, tags=["auth"])
    def token(
        grant_type: Annotated[str, Form()],
        client_id: Annotated[str | None, Form(max_length=64)] = None,
        client_secret: Annotated[str | None, Form(max_length=256)] = None,
        scope: Annotated[str | None, Form(max_length=2048)] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> TokenResponse:
        """OAuth 2.0 client credentials (RFC 6749 §4.4): an access token for the scopes
        asked (default: every scope the app holds). The client authenticates with
        ``client_id`` and ``client_secret`` in the form or with HTTP Basic (§2.3.1)."""
        if grant_type != "client_credentials":
            raise api_error(400, "unsupported_grant_type", "use grant_type=client_credentials")
        client_id, client_secret = client_credentials(authorization, client_id, client_secret)
        found = state.apps.authenticate(client_id, client_secret)
        if found is None:
            raise api_error(401, "invalid_client", "unknown client id or wrong secret")
        asked = set(scope.split()) if scope else set(found.scopes)
        denied = sorted(s for s in asked if not found.allows(s))
        if denied:
            raise api_error(400, "invalid_scope", f"this app may not ask for {denied}")
        issued = state.tokens.issue(
            client_id=client_id, institution=found.institution, scopes=frozenset(asked)
        )
        return TokenResponse(
            access_token=issued, expires_in=state.tokens.ttl_s, scope=" ".join(sorted(asked))
        )

    @app.get("/v1/models", response_model=list[ModelInfo], tags=["scoring"])
    def models(who: Annotated[Caller, auth.requires()]) -> list[ModelInfo]:
        """The models this app may score."""
        return [
            ModelInfo(
                name=m.name,
                version=m.version,
                mode=m.mode,
                parties=sorted(m.parties),
                data_categories=sorted(m.categories),
            )
            for m in state.catalog.models.values()
            if who.allows(f"score:{m.name}")
        ]

    @app.post(
        "/v1/models/{model}/score",
        response_model=ScoreResponse,
        tags=["scoring"],
        responses={401: {}, 403: {}, 404: {}, 429: {}, 502: {}, 503: {}},
    )
    async def score(
        consented: Annotated[ConsentedSubjects, Depends(single_gate.single)],
    ) -> ScoreResponse:
        """Score one consented subject."""
        body = consented.ask.request
        assert isinstance(body, ScoreRequest)
        model = state.catalog.models[consented.ask.model]
        return await score_one(state, model, consented, request_id=body.request_id)

    @app.post(
        "/v1/models/{model}/decide",
        response_model=DecisionResponse,
        tags=["decisions"],
        responses={401: {}, 403: {}, 404: {}, 422: {}, 429: {}, 502: {}, 503: {}},
    )
    async def decide_application(
        consented: Annotated[ConsentedSubjects, Depends(decision_gate.single)],
    ) -> DecisionResponse:
        """Decide one application with the model's decision policy: approve, refer or
        decline a new applicant (with a limit), or raise, keep or refer an existing
        customer's limit; the reasons, the policy and model versions and the evidence id of
        the decision, replayable from the ledger (`fedrisk decide replay`)."""
        body = consented.ask.request
        assert isinstance(body, DecisionRequest)
        model = state.catalog.models[consented.ask.model]
        policy = state.policies[model.name]
        return await decide_one(state, model, policy, consented, body)

    @app.post(
        "/v1/models/{model}/score/batch",
        response_model=BatchResponse,
        tags=["scoring"],
        responses={401: {}, 403: {}, 404: {}, 429: {}, 502: {}, 503: {}},
    )
    async def score_many(
        consented: Annotated[ConsentedSubjects, Depends(batch_gate.batch)],
    ) -> BatchResponse:
        """Score a portfolio: consented subjects are scored, the others listed as refused
        (each refusal is evidenced); reason codes only if asked."""
        body = consented.ask.request
        assert isinstance(body, BatchRequest)
        model = state.catalog.models[consented.ask.model]
        return await score_batch(state, model, consented, body)

    add_consent_routes(app, state, auth=auth)
    add_monitoring_routes(app, state, auth=auth)

    def found_evidence(evidence_id: str) -> Entry:
        try:
            return state.consent.ledger.find(evidence_id)
        except PurgedEvidenceError:
            raise api_error(
                410, "purged", "this entry was purged at the end of its retention period"
            ) from None
        except UnknownEvidenceError:
            raise api_error(404, "unknown_evidence", "no such evidence id") from None

    @app.get("/v1/evidence/{evidence_id}", tags=["evidence"], responses={404: {}, 410: {}})
    def evidence(
        evidence_id: Annotated[str, Path(max_length=64)],
        who: Annotated[Caller, auth.requires("evidence:read")],
    ) -> dict[str, Any]:
        """The evidence certificate of one of this app's decisions or of a consent event
        of its institution (checkable with `fedrisk ledger check` and the published key)."""
        entry = found_evidence(evidence_id)
        body = entry.body
        mine = body.get("app") == who.client_id or (
            body.get("kind") == "consent_event"
            and _grant_institution(state, body) == who.institution
        )
        if not mine:
            raise api_error(404, "unknown_evidence", "no such evidence id")
        return make_certificate(state.consent.ledger, evidence_id)

    @app.post(
        "/v1/evidence/{evidence_id}/review",
        status_code=202,
        tags=["evidence"],
        responses={404: {}, 410: {}},
    )
    def request_review(
        evidence_id: Annotated[str, Path(max_length=64)],
        who: Annotated[Caller, auth.requires("evidence:read")],
    ) -> dict[str, str]:
        """Record the subject's request for a human review of one of this app's decisions
        (PIPL Art. 24); the answer is the request's own evidence id."""
        entry = found_evidence(evidence_id)
        if entry.body.get("kind") != "scoring_decision" or entry.body.get("app") != who.client_id:
            raise api_error(404, "unknown_evidence", "no such decision of this app")
        body = review_request_entry(decision=evidence_id, app=who.client_id, at=_now())
        (recorded,) = state.record_decisions([body])
        return {"decision": evidence_id, "review_request": recorded}

    @app.get("/v1/ledger/head", tags=["evidence"])
    def ledger_head() -> dict[str, Any]:
        """A signed tree head of the evidence ledger now (public: publish it)."""
        return state.consent.ledger.sign_head().to_dict()

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        ready = bool(state.catalog.models)
        body = {
            "status": "ready" if ready else "no servable model",
            "models": {n: m.version for n, m in state.catalog.models.items()},
            "skipped": state.catalog.skipped,
        }
        return JSONResponse(status_code=200 if ready else 503, content=body)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    delivering: dict[str, Any] = {}

    @app.on_event("startup")
    async def start_webhooks() -> None:
        if state.monitoring is None:
            return
        deliverer = Deliverer(state.monitoring.outbox)
        stop = asyncio.Event()
        state.monitoring.set_notify(deliverer.notify)
        delivering.update(
            deliverer=deliverer, stop=stop, task=asyncio.create_task(deliverer.run(stop))
        )

    @app.on_event("shutdown")
    async def close() -> None:
        await state.fanout.close()
        if delivering:
            delivering["stop"].set()
            await delivering["task"]
            await delivering["deliverer"].close()

    return app


class _Measure:
    """Request counts and latencies per route template (a pure ASGI middleware: no extra
    task or stream per request, unlike Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app: Any, *, state: ServingState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics = self.state.metrics
            metrics.requests.labels(route, str(status["code"])).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)


def _grant_institution(state: ServingState, body: dict[str, Any]) -> str | None:
    try:
        return state.consent.state(str(body.get("grant_id"))).grant.institution
    except ConsentError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)
