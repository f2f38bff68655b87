"""``Store.transaction(once=True)``: the receipt is written with the body's effects, a retry
that finds it returns the recorded result without running the body again, and ``gc``
prunes receipts older than a day."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, text

from conveyor.store import Store, collect_garbage, write_receipts
from conveyor.store._receipts import RECEIPT_TTL_MS


def test_a_retry_after_a_committed_attempt_returns_its_result(store: Store) -> None:
    with store.write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS receipt_probe (n INTEGER)"))
    calls: list[int] = []
    failed: list[bool] = []

    def body(conn: Any) -> list[int]:
        calls.append(1)
        conn.execute(text("INSERT INTO receipt_probe (n) VALUES (1)"))
        return [7, len(calls)]

    real = store.write

    def flaky_write(**kwargs: Any) -> Any:
        """The first transaction commits, then its acknowledgement is "lost" (a transient error)."""
        from contextlib import contextmanager

        @contextmanager
        def wrapped() -> Any:
            with real(**kwargs) as conn:
                yield conn
            if not failed:
                failed.append(True)
                raise ConnectionResetError("acknowledgement lost")

        return wrapped()

    store.write = flaky_write  # type: ignore[method-assign]
    try:
        assert store.transaction(body, once=True) == [7, 1]
    finally:
        store.write = real  # type: ignore[method-assign]
    assert len(calls) == 1 and failed == [True]
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM receipt_probe")).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(write_receipts)).scalar_one() == 1
    with store.write() as conn:
        conn.execute(text("DROP TABLE receipt_probe"))


def test_without_once_the_same_retry_runs_the_body_twice(store: Store) -> None:
    """The control: what ``once`` prevents (a committed attempt repeated)."""
    calls: list[int] = []
    failed: list[bool] = []
    real = store.write

    def flaky_write(**kwargs: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def wrapped() -> Any:
            with real(**kwargs) as conn:
                yield conn
            if not failed:
                failed.append(True)
                raise ConnectionResetError("acknowledgement lost")

        return wrapped()

    store.write = flaky_write  # type: ignore[method-assign]
    try:
        store.transaction(lambda conn: calls.append(1))
    finally:
        store.write = real  # type: ignore[method-assign]
    assert len(calls) == 2


def test_gc_prunes_receipts_older_than_a_day(store: Store, blobs: Any) -> None:
    now = int(time.time() * 1000)
    with store.write() as conn:
        conn.execute(write_receipts.insert(), [
            {"token": "old", "at": now - RECEIPT_TTL_MS - 1000, "result": None},
            {"token": "new", "at": now, "result": "[1]"},
        ])
    collect_garbage(store, blobs, dry_run=True)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(write_receipts)).scalar_one() == 2
    collect_garbage(store, blobs)
    with store.read() as conn:
        assert conn.execute(select(write_receipts.c.token)).scalars().all() == ["new"]
