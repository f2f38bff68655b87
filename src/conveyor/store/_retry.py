"""Transient database failures: which ones, and a bounded exponential backoff around them.

A failure is *transient* when trying the same thing again a moment later may succeed:
the server refused or dropped the connection (restart, fail-over, a network blink), the
connection attempt timed out, PostgreSQL cancelled a transaction as a serialization
failure or deadlock victim, or a SQLite writer stayed locked out. Anything else (a
constraint, bad SQL, a missing table) fails at once.

A retried transaction must be safe to run twice: its first attempt may have committed
with the acknowledgement lost. Callers make their writes idempotent (metric batches carry
an id recorded in the same transaction; params, tags and artifact rows are upserts; a
run end accepts a run already ended the same way).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger("conveyor.store")

T = TypeVar("T")

#: SQLSTATE classes/codes worth another try: connection exceptions (08…), serialization
#: failure, deadlock, the server shutting down or starting up (57P01-57P03), too many
#: connections (53300).
_TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "53300")


def is_transient(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or the error it wraps) is worth retrying."""
    seen = 0
    while exc is not None and seen < 5:
        seen += 1
        if isinstance(exc, DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig
            continue
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        module = type(exc).__module__
        bases = {klass.__name__ for klass in type(exc).__mro__}
        if module.startswith("psycopg") and bases & {"OperationalError", "InterfaceError"} and sqlstate is None:
            return True  # connection refused / reset / closed / timed out: no SQLSTATE at all
        if module == "sqlite3" and type(exc).__name__ == "OperationalError" and "locked" in str(exc):
            return True
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        exc = exc.__cause__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Retry for at most ``seconds``, sleeping ``first`` s, then twice as long each time (with
    jitter), never more than ``cap`` s at once. ``seconds=0`` disables retrying."""

    seconds: float = 5.0
    first: float = 0.1
    cap: float = 2.0

    def call(self, action: Callable[[], T], *, what: str = "metadata write") -> T:
        started = time.monotonic()
        delay = self.first
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except Exception as exc:
                if not is_transient(exc) and not is_transient(exc.__cause__):
                    raise
                elapsed = time.monotonic() - started
                if elapsed + delay > self.seconds:
                    raise
                log.warning(
                    "conveyor: %s failed (attempt %d, %s); retrying in %.1f s", what, attempt, _short(exc), delay
                )
                time.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(self.cap, delay * 2)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
