"""heartbeat of running runs, idempotent metric batches, the schema log of rolling upgrades

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
#: Only a nullable column and new tables: a client at 0006 keeps working (see _compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", _BIGINT, nullable=True))
    op.create_table(
        "metric_batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("written_at", _BIGINT, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_batches_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_batches")),
    )
    with op.batch_alter_table("metric_batches", schema=None) as batch_op:
        batch_op.create_index("ix_metric_batches_run_id", ["run_id"], unique=False)
    op.create_table(
        "conveyor_schema_log",
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("additive", sa.Boolean(), nullable=False),
        sa.Column("applied_at", _BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_conveyor_schema_log")),
    )


def downgrade() -> None:
    op.drop_table("conveyor_schema_log")
    with op.batch_alter_table("metric_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_batches_run_id")
    op.drop_table("metric_batches")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
