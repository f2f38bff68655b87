"""data: data sets, versions and lineage (issue: data sets and pipelines)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Reserved in the chain so that parts built side by side never fork the history;
the owner of the data aggregate fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
