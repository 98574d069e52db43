"""Sending the monitor's events to the coordinator (``POST /v1/monitoring/events``) with
the node's client credentials; an event stays pending at the node until the coordinator
settles it (an alert, the alert it already became, or a definite refusal)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from .monitor import FactoryMonitor

__all__ = ["CoordinatorLink", "ReportOutcome"]

logger = logging.getLogger(__name__)

#: Answers after which the event is settled (not sent again).
_SETTLED: Final = {200, 201, 403, 404}
#: Seconds before a token's expiry at which a new one is fetched.
_TOKEN_MARGIN_S: Final = 30.0


@dataclass
class ReportOutcome:
    alerts: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # event id -> reason
    pending: int = 0


class CoordinatorLink:
    """The node's client of the coordinator's monitoring route (one connection, its
    access token reused until shortly before it expires)."""

    def __init__(
        self, coordinator: str, *, client_id: str, client_secret: str, timeout_s: float = 10.0
    ) -> None:
        self._client = httpx.Client(base_url=coordinator.rstrip("/"), timeout=timeout_s)
        self._credentials = (client_id, client_secret)
        self._token: tuple[str, float] | None = None

    def close(self) -> None:
        self._client.close()

    def report(self, monitor: FactoryMonitor) -> ReportOutcome:
        """Send every pending event of ``monitor`` once; unsettled ones stay pending."""
        outcome = ReportOutcome()
        for event in monitor.pending():
            try:
                answer = self.send(event)
            except httpx.HTTPError as exc:
                logger.warning("event %s not sent (%s): kept", event["event_id"], exc)
                outcome.pending += 1
                continue
            _settle(monitor, event, answer, outcome)
        return outcome

    def send(self, event: Mapping[str, Any]) -> httpx.Response:
        """POST one event; the coordinator's answer."""
        headers = {"Authorization": f"Bearer {self._access_token()}"}
        return self._client.post("/v1/monitoring/events", json=dict(event), headers=headers)

    def _access_token(self) -> str:
        now = time.monotonic()
        if self._token is None or self._token[1] - _TOKEN_MARGIN_S < now:
            answer = self._client.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials", "scope": "monitoring:report"},
                auth=self._credentials,
            )
            answer.raise_for_status()
            body = answer.json()
            self._token = (body["access_token"], now + float(body["expires_in"]))
        return self._token[0]


def _settle(
    monitor: FactoryMonitor, event: Mapping[str, Any], answer: httpx.Response, out: ReportOutcome
) -> None:
    if answer.status_code not in _SETTLED:
        logger.warning("event %s: coordinator answered %s", event["event_id"], answer.status_code)
        out.pending += 1
        return
    if answer.status_code in (200, 201):
        out.alerts.append(answer.json()["alert_id"])
    else:
        detail = answer.json().get("detail", {})
        out.refused[str(event["event_id"])] = str(detail.get("reason", answer.status_code))
    monitor.acknowledge(str(event["event_id"]))
