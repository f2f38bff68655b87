"""serving: serving-side records (feedback index)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Reserved in the chain so that parts built side by side never fork the history;
the owner of the serving aggregate fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
