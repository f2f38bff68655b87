"""pipelines: pipeline runs, step executions and the step cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Reserved in the chain so that parts built side by side never fork the history;
the owner of the pipelines aggregate fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
