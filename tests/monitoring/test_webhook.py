"""Webhook delivery over httpx: bounded by a timeout when the receiver hangs, retried on
5xx, and never redirected away from the configured URL."""

from __future__ import annotations

import time
from typing import Any

from conveyor.monitoring import Notifier


def test_a_hanging_receiver_times_out_and_is_recorded(webhook: Any) -> None:
    webhook.release.clear()  # the receiver accepts the connection and never answers
    outcomes: list[Any] = []
    notifier = Notifier(webhook.url, retries=1, backoff=0.01, timeout=0.5, record=lambda i, d: outcomes.append(d))
    started = time.monotonic()
    notifier.notify(1, {"message": "drift"})
    assert notifier.wait(20)
    took = time.monotonic() - started
    webhook.release.set()
    (delivery,) = outcomes
    assert delivery.status == "failed" and delivery.attempts == 2 and "Timeout" in delivery.error
    assert took < 10


def test_redirects_are_not_followed(webhook: Any) -> None:
    webhook.statuses = [307, 307]
    outcomes: list[Any] = []
    notifier = Notifier(webhook.url, retries=1, backoff=0.01, timeout=2, record=lambda i, d: outcomes.append(d))
    notifier.notify(2, {"message": "drift"})
    assert notifier.wait(20)
    (delivery,) = outcomes
    assert delivery.status == "failed" and delivery.http_status == 307 and delivery.error == "HTTP 307"


def test_delivered_after_a_server_error(webhook: Any) -> None:
    webhook.statuses = [503]
    outcomes: list[Any] = []
    notifier = Notifier(webhook.url, retries=2, backoff=0.01, timeout=2, record=lambda i, d: outcomes.append(d))
    notifier.notify(3, {"message": "drift", "value": 0.4})
    assert notifier.wait(20)
    (delivery,) = outcomes
    assert delivery.status == "delivered" and delivery.attempts == 2 and delivery.http_status == 200
    assert webhook.posts[-1] == {"message": "drift", "value": 0.4}
