"""Every database wait is bounded: a statement running past ``store.statement_timeout`` is
cancelled by PostgreSQL and reported as a store error naming the store, not a hang."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from conveyor.errors import StorageError
from conveyor.settings import StoreSettings
from conveyor.store import Store

pytestmark = pytest.mark.postgres


def test_a_statement_past_the_timeout_is_cancelled(postgres_url: str) -> None:
    Store.open(postgres_url, create=True).close()
    store = Store.open(postgres_url, settings=StoreSettings(statement_timeout=0.5))
    with pytest.raises(StorageError) as info:
        with store.read() as conn:
            conn.execute(text("SELECT pg_sleep(30)"))
    assert "statement timeout" in str(info.value) and store.url in str(info.value)
    with store.read() as conn:  # the connection pool is still usable afterwards
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "500ms"
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "500ms"
    store.close()
