"""Which failures are retried, and that the retry budget bounds the wait."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from conveyor.store._retry import RetryPolicy, is_transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.ConnectionTimeout("connection timeout expired"), True),
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_transient_failures_are_told_apart(error: Exception, transient: bool) -> None:
    wrapped = OperationalError("SELECT 1", {}, error)
    assert is_transient(error) is transient
    assert is_transient(wrapped) is transient


def test_a_transient_failure_is_retried_until_it_passes() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.OperationalError("connection failed: Connection refused")
        return "ok"

    assert RetryPolicy(seconds=5, first=0.01).call(flaky) == "ok" and len(calls) == 3


def test_a_permanent_failure_is_not_retried_and_the_budget_ends_retries() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise psycopg.errors.UniqueViolation("duplicate key")

    with pytest.raises(psycopg.errors.UniqueViolation):
        RetryPolicy(seconds=5, first=0.01).call(broken)
    assert len(calls) == 1

    def down() -> None:
        calls.append(1)
        raise psycopg.OperationalError("connection failed: Connection refused")

    calls.clear()
    with pytest.raises(psycopg.OperationalError):
        RetryPolicy(seconds=0.3, first=0.05, cap=0.1).call(down)
    assert 2 <= len(calls) <= 8
    calls.clear()
    with pytest.raises(psycopg.OperationalError):
        RetryPolicy(seconds=0).call(down)  # retrying disabled
    assert len(calls) == 1
