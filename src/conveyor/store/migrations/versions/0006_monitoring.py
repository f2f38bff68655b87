"""monitoring: monitors, evaluations, alerts and retraining triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Reserved in the chain so that parts built side by side never fork the history;
the owner of the monitoring aggregate fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
