"""Rolling upgrades: a client keeps working on a database one or more *additive* migrations
ahead of it, is refused (saying why) by a non-additive one, and `db upgrade` is exclusive."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from conveyor.errors import Conflict, SchemaOutdated
from conveyor.settings import TrackingSettings
from conveyor.store import Store, head_revision, schema_log
from conveyor.store._compat import ADDITIVE
from conveyor.store._store import _make_sqlite_folder, _script
from conveyor.tracking import Tracker


def test_every_migration_says_whether_it_is_additive() -> None:
    flags = {rev.revision: getattr(rev.module, "additive", None) for rev in _script().walk_revisions()}
    assert None not in flags.values(), "a migration script lacks `additive = True/False`"
    assert flags == ADDITIVE


def _newer_migration(store: Store, *, additive: bool, revisions: tuple[str, ...] = ("0098", "0099")) -> None:
    """What a newer conveyor's `db upgrade` would leave: new nullable column, new table,
    revisions this client does not know, logged with their flag."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN future_col VARCHAR(20)")
        conn.exec_driver_sql("CREATE TABLE future_things (id INTEGER PRIMARY KEY, run_id VARCHAR(32))")
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revisions[-1]}'")
        for i, rev in enumerate(revisions):
            flag = additive or i < len(revisions) - 1  # only the last one breaks compatibility
            conn.execute(schema_log.insert().values(revision=rev, additive=flag, applied_at=0))


def test_a_client_reads_and_writes_a_database_additive_migrations_ahead(store_url: str, blobs: Any) -> None:
    Store.open(store_url, create=True).close()
    raw = Store.connect(store_url)
    _newer_migration(raw, additive=True)
    raw.close()
    store = Store.open(store_url)  # no SchemaOutdated
    tracker = Tracker(store, blobs, TrackingSettings(capture_git=False, capture_packages=False))
    run = tracker.create_run("rolling")
    tracker.log_params(run.id, {"alpha": 1})
    tracker.log_metric(run.id, "loss", 0.25, step=3)
    tracker.end_run(run.id)
    found = tracker.search_runs("rolling", filter="params.alpha = '1'", output="runs")
    assert [r.id for r in found] == [run.id] and found[0].metrics["loss"] == 0.25
    tracker.close()


def test_a_non_additive_migration_ahead_is_refused_naming_it(store_url: str) -> None:
    Store.open(store_url, create=True).close()
    raw = Store.connect(store_url)
    _newer_migration(raw, additive=False)
    raw.close()
    with pytest.raises(SchemaOutdated) as info:
        Store.open(store_url)
    assert "not additive: 0099" in str(info.value) and "upgrade conveyor" in str(info.value)


def test_upgrade_logs_every_revision_with_its_flag(store_url: str) -> None:
    _make_sqlite_folder(store_url)
    store = Store.connect(store_url)
    store.upgrade("0006")  # a database made by an older conveyor, then upgraded
    store.upgrade()
    with store.read() as conn:
        logged = dict(conn.execute(select(schema_log.c.revision, schema_log.c.additive)).all())
    assert logged == ADDITIVE and head_revision() in logged
    store.close()


def test_db_upgrade_refuses_while_another_upgrade_holds_the_lock(store_url: str) -> None:
    _make_sqlite_folder(store_url)
    store = Store.connect(store_url)
    store.upgrade("0005")
    if store.engine.dialect.name == "postgresql":
        other = Store.connect(store_url)
        with other.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_try_advisory_lock(727275)")).scalar()
            with pytest.raises(Conflict, match="another `conveyor db upgrade` is running"):
                store.upgrade()
            conn.execute(text("SELECT pg_advisory_unlock(727275)"))
        other.close()
    else:
        path = Path(store_url.removeprefix("sqlite:///") + ".upgrade-lock")
        with open(path, "a+b") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(Conflict, match="another `conveyor db upgrade` is running"):
                store.upgrade()
    assert store.current_revision() == "0005"  # nothing half-done
    store.upgrade()  # the lock released, it goes through
    assert store.current_revision() == head_revision()
    store.close()
