"""Post-loan monitoring routes: factory nodes report change events, lenders read alerts.

- ``POST /v1/monitoring/events`` (scope ``monitoring:report``): a node's change event
  becomes an alert (201) or names the alert it already became (200); 404 ``no_loan`` for a
  factory without an open loan; 403 when the firm's consent is not in force (the refusal is
  evidenced; nothing is kept or sent); 403 ``not_your_factory`` when the node reports for
  another factory (a node's app is registered with its factory as institution).
- ``GET /v1/alerts`` and ``GET /v1/alerts/{id}`` (scope ``alerts:read``): the caller's
  institution's alerts only (another institution's answers 404).
- ``PUT /v1/webhook`` (scope ``alerts:write``): the institution's webhook URL; answers the
  signing secret (shown once). Alerts are POSTed to it signed, and retried until taken.

No postponed annotations here: FastAPI reads the route signatures at run time.
"""

from datetime import UTC, datetime
from typing import Annotated

from coordinator.monitoring.webhooks import WebhookError
from fastapi import FastAPI, Path, Query, Response

from coordinator.monitoring.alerts import Alert, AlertDesk, NoLoanError, RefusedError

from .authorization import Authorization, api_error
from .schemas import AlertBody, AlertList, ChangeEventBody, WebhookRequest, WebhookResponse
from .service import ServingState
from .tokens import Caller

__all__ = ["add_monitoring_routes"]


def _view(alert: Alert) -> AlertBody:
    return AlertBody(**alert.body, duplicate=alert.duplicate)


def add_monitoring_routes(app: FastAPI, state: ServingState, *, auth: Authorization) -> None:
    def desk() -> AlertDesk:
        if state.monitoring is None:
            raise api_error(503, "no_monitoring", "monitoring is not set up on this service")
        return state.monitoring

    @app.post(
        "/v1/monitoring/events",
        response_model=AlertBody,
        status_code=201,
        tags=["monitoring"],
        responses={200: {}, 403: {}, 404: {}},
    )
    def report_event(
        body: ChangeEventBody,
        response: Response,
        who: Annotated[Caller, auth.requires("monitoring:report")],
    ) -> AlertBody:
        """A factory node's change event (aggregates only) -> the lender's alert."""
        if body.factory != who.institution:
            raise api_error(
                403, "not_your_factory", f"this node reports for {who.institution!r} only"
            )
        event = body.model_dump(mode="json")
        try:
            alert = desk().receive(event, reporter=who.client_id, at=datetime.now(UTC))
        except NoLoanError as exc:
            raise api_error(404, exc.reason, str(exc)) from None
        except RefusedError as exc:
            raise api_error(403, exc.reason, str(exc)) from None
        if alert.duplicate:
            response.status_code = 200
        state.metrics.decisions.labels("monitoring", "alert").inc()
        return _view(alert)

    @app.get("/v1/alerts", response_model=AlertList, tags=["monitoring"])
    def list_alerts(
        who: Annotated[Caller, auth.requires("alerts:read")],
        after: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    ) -> AlertList:
        """The institution's alerts in arrival order (page with ``after``)."""
        found = desk().book.alerts(who.institution, after=after, limit=limit)
        return AlertList(
            alerts=[_view(a) for a in found], last=found[-1].alert_id if found else after
        )

    @app.get("/v1/alerts/{alert_id}", response_model=AlertBody, tags=["monitoring"])
    def one_alert(
        alert_id: Annotated[str, Path(max_length=64)],
        who: Annotated[Caller, auth.requires("alerts:read")],
    ) -> AlertBody:
        found = desk().book.alert(alert_id)
        if found is None or found.institution != who.institution:
            raise api_error(404, "unknown_alert", "no such alert of this institution")
        return _view(found)

    @app.put("/v1/webhook", response_model=WebhookResponse, tags=["monitoring"])
    def set_webhook(
        body: WebhookRequest, who: Annotated[Caller, auth.requires("alerts:write")]
    ) -> WebhookResponse:
        """Deliver this institution's alerts to ``url`` (signed; a new secret each time)."""
        try:
            secret = desk().outbox.set_endpoint(institution=who.institution, url=body.url)
        except WebhookError as exc:
            raise api_error(422, "bad_webhook", str(exc)) from None
        return WebhookResponse(url=body.url, secret=secret)
