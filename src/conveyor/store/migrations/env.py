"""Alembic environment: migrations run on a connection handed over by ``Store.upgrade``."""

from alembic import context

import conveyor.store  # noqa: F401  (every aggregate registers its tables)
from conveyor.store._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through a misconfigured alembic call
    raise RuntimeError("conveyor migrations run through `conveyor db upgrade`, not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
