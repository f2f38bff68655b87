"""retraining lock as a lease: holder, lease_until and heartbeat_at on retrain_triggers

A trigger whose process died kept ``lock_key`` forever; with a lease the next trigger (or
``conveyor monitor unlock``) can tell a live holder from a dead one. Rows made before this
revision have no lease and count as expired.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
#: Only nullable columns: a client at 0008 keeps working (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("lease_until", _BIGINT, nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", _BIGINT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("holder")
