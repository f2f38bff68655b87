"""registry: versions are checked before READY (PENDING/FAILED_REGISTRATION + the reason)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
#: Not additive: an older client does not know FAILED_REGISTRATION and would serve or
#: promote a version that failed its checks (see store/_compat.py).
additive = False


def upgrade() -> None:
    # "FAILED_REGISTRATION" does not fit the old String(16); batch mode rebuilds the table on SQLite
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=32), existing_nullable=False
        )
        batch_op.add_column(sa.Column("status_message", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE model_versions SET status = 'ARCHIVED' WHERE status IN ('PENDING_REGISTRATION', 'FAILED_REGISTRATION')")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("status_message")
        batch_op.alter_column(
            "status", existing_type=sa.String(length=32), type_=sa.String(length=16), existing_nullable=False
        )
