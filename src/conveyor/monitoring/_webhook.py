"""Alert notifications: HTTP POST (httpx) of a JSON document to a webhook, and the log.

Delivery runs on a background thread so a slow or dead endpoint never blocks monitoring:
each attempt has a timeout, failures are retried with exponential backoff
(``backoff``, 2×, 4×…), and the outcome (delivered or failed, attempts, HTTP status,
error) is recorded against the alert. ``wait()`` lets a one-shot command give pending
deliveries a bounded time before it exits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from conveyor.errors import ConfigError

log = logging.getLogger("conveyor.monitoring")


@dataclass(frozen=True)
class Delivery:
    target: str
    status: str  # delivered | failed
    attempts: int
    http_status: int | None
    error: str | None


class Notifier:
    """Posts alerts to ``url`` (when set) and logs them; ``record`` stores each outcome."""

    def __init__(self, url: str | None, *, retries: int = 3, backoff: float = 0.5, timeout: float = 5.0,
                 record: Callable[[int, Delivery], None] | None = None) -> None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook {url!r} is not an http(s) URL", field="webhook", value=url,
                              hint="write e.g. https://hooks.example.com/conveyor")
        self.url, self.retries, self.backoff, self.timeout = url, retries, backoff, timeout
        self.record = record
        self._threads: list[threading.Thread] = []

    def notify(self, alert_id: int, payload: dict[str, Any]) -> None:
        """Log the alert now; POST it in the background."""
        log.warning("alert %s: %s", alert_id, payload.get("message", payload))
        if self.url is None:
            return
        thread = threading.Thread(target=self._deliver, args=(alert_id, payload), daemon=True,
                                  name=f"conveyor-webhook-{alert_id}")
        thread.start()
        self._threads.append(thread)

    def _deliver(self, alert_id: int, payload: dict[str, Any]) -> None:
        assert self.url is not None
        body = json.dumps(payload, default=str).encode()
        status: int | None = None
        error: str | None = None
        attempt = 0
        headers = {"Content-Type": "application/json", "User-Agent": "conveyor-monitoring"}
        # every phase (connect, write, read, pool) is bounded; redirects are not followed,
        # so an alert goes to the configured URL only
        with httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False) as client:
            for attempt in range(1, self.retries + 2):
                try:
                    response = client.post(self.url, content=body, headers=headers)
                    status = response.status_code
                    error = None if status < 300 else f"HTTP {status}"
                    if error is None:
                        break
                except httpx.HTTPError as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                if attempt <= self.retries:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
        delivery = Delivery(self.url, "failed" if error else "delivered", attempt, status, error)
        if error:
            log.warning("webhook %s failed after %d attempts: %s", self.url, attempt, error)
        if self.record is not None:
            try:
                self.record(alert_id, delivery)
            except Exception:  # recording must not kill the delivery thread; the log has it
                log.exception("could not record the webhook delivery of alert %s", alert_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for pending deliveries (at most ``timeout`` seconds); True when all finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        return not self._threads
