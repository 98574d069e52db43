"""The lender's webhook receiver (coordinator/monitoring/receiver.py): takes a delivery
signed with its secret, refuses a wrong secret, a changed body and an unsigned one."""

from __future__ import annotations

import json
import time

import httpx

from coordinator.monitoring.receiver import WebhookReceiver
from coordinator.monitoring.webhooks import new_secret, sign


def _post(url: str, secret: str, body: bytes, *, signed_body: bytes | None = None) -> int:
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg-1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(
            secret=secret, message_id="msg-1", timestamp=stamp, body=signed_body or body
        ),
        "content-type": "application/json",
    }
    return httpx.post(url, content=body, headers=headers, timeout=10).status_code


def test_only_deliveries_signed_with_its_secret_over_their_body_are_taken() -> None:
    secret = new_secret()
    body = json.dumps({"type": "monitoring.alert", "data": {"event_id": "e1"}}).encode()
    with WebhookReceiver(secret) as hook:
        good = _post(hook.url, secret, body)
        wrong_key = _post(hook.url, new_secret(), body)
        tampered = _post(hook.url, secret, body.replace(b"e1", b"e2"), signed_body=body)
        unsigned = httpx.post(hook.url, content=body, timeout=10).status_code

    assert (good, wrong_key, tampered, unsigned) == (204, 401, 401, 401)
    assert hook.rejected == 3
    assert [m["data"]["event_id"] for m in hook.received] == ["e1"]
    assert set(hook.arrived) == {"e1"}


def test_scripted_answers_are_given_in_turn_and_only_taken_deliveries_kept() -> None:
    secret = new_secret()
    body = json.dumps({"type": "monitoring.alert", "data": {"event_id": "e1"}}).encode()
    with WebhookReceiver(secret) as hook:
        hook.answers = [503, 500]
        statuses = [_post(hook.url, secret, body) for _ in range(3)]
        assert hook.wait(1, timeout_s=1)
        assert not hook.wait(2, timeout_s=0.2)

    assert statuses == [503, 500, 204]
    assert len(hook.received) == 1
