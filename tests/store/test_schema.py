"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import conveyor.store
from conveyor.errors import SchemaOutdated
from conveyor.store import Store, head_revision, metadata


def test_migrations_match_metadata(store_url: str) -> None:
    """Running every Alembic migration builds exactly what ``Store.install`` creates."""
    from conveyor.store._store import _make_sqlite_folder

    _make_sqlite_folder(store_url)
    store = Store.connect(store_url)
    store.upgrade()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert store.current_revision() == head_revision()
    store.close()


def test_head_constant_matches_the_migration_scripts() -> None:
    from conveyor.store._store import scripted_head

    assert head_revision() == scripted_head()


def test_install_is_idempotent(store: Store) -> None:
    store.install()
    assert store.current_revision() == head_revision()


def test_fresh_database_is_at_head(store: Store) -> None:
    assert store.current_revision() == head_revision()


def test_uninitialised_database_names_the_fix(store_url: str) -> None:
    with pytest.raises(SchemaOutdated) as info:
        Store.open(store_url)
    assert "conveyor db upgrade" in str(info.value) or "conveyor init" in str(info.value)


def test_outdated_database_names_db_upgrade(store_url: str) -> None:
    from conveyor.store._store import _make_sqlite_folder

    _make_sqlite_folder(store_url)
    store = Store.connect(store_url)
    store.upgrade("0001")  # a database made by an older conveyor
    with pytest.raises(SchemaOutdated) as info:
        Store.open(store_url)
    assert "conveyor db upgrade" in str(info.value)
    store.upgrade()
    Store.open(store_url).close()


def test_unknown_revision_says_newer_conveyor(store_url: str) -> None:
    store = Store.open(store_url, create=True)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaOutdated, match="newer"):
        Store.open(store_url)


def test_every_foreign_key_is_indexed() -> None:
    """Unindexed foreign keys are what made MLflow's joins time out (mlflow#3785)."""
    missing = []
    for table in metadata.sorted_tables:
        indexed = [tuple(c.name for c in ix.columns) for ix in table.indexes]
        if table.primary_key is not None:
            indexed.append(tuple(c.name for c in table.primary_key.columns))
        indexed += [tuple(c.name for c in u.columns) for u in table.constraints if hasattr(u, "columns")
                    and u.__class__.__name__ == "UniqueConstraint"]
        for fk in table.foreign_key_constraints:
            cols = tuple(c.name for c in fk.columns)
            if not any(ix[: len(cols)] == cols for ix in indexed):
                missing.append(f"{table.name}{cols}")
    assert missing == []


def test_bad_url_is_a_config_error() -> None:
    from conveyor.errors import ConfigError

    with pytest.raises(ConfigError, match="metadata URL"):
        Store.connect("mysql://nope")
    with pytest.raises(ConfigError):
        Store.connect("not a url at all")


def test_postgres_scheme_means_psycopg3() -> None:
    assert conveyor.store.normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert conveyor.store.normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from conveyor.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(ConfigError, match=r"conveyor-mlops\[postgres\]"):
        Store.connect("postgresql://u@h/db")
