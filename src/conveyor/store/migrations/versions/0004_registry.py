"""registry: registered models, versions, aliases, events and gate evaluations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Reserved in the chain so that parts built side by side never fork the history;
the owner of the registry aggregate fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
