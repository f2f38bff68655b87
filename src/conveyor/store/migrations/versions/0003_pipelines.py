"""pipelines: pipeline runs, step executions and the step cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Tables and indexes mirror ``conveyor.store._pipelines`` exactly.
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
#: Whether a client one revision older keeps working on this schema (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("dag", sa.Text(), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_pipeline_runs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_pipeline_runs")),
    )
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_runs_pipeline_created_at", ["pipeline", "created_at"], unique=False)
        batch_op.create_index("ix_pipeline_runs_created_at", ["created_at"], unique=False)

    op.create_table(
        "step_executions",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=256), nullable=False),
        sa.Column("cache_key", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("started_at", _BIGINT, nullable=False),
        sa.Column("ended_at", _BIGINT, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_step_executions_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"], ["pipeline_runs.run_id"],
            name=op.f("fk_step_executions_pipeline_run_id_pipeline_runs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_step_executions")),
    )
    with op.batch_alter_table("step_executions", schema=None) as batch_op:
        batch_op.create_index("ix_step_executions_pipeline_run_id", ["pipeline_run_id"], unique=False)
        batch_op.create_index(
            "ix_step_executions_cache_key_status_ended_at", ["cache_key", "status", "ended_at"], unique=False
        )

    op.create_table(
        "step_outputs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("materializer", sa.String(length=128), nullable=False),
        sa.Column("type_name", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["step_executions.run_id"],
            name=op.f("fk_step_outputs_run_id_step_executions"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_step_outputs")),
    )
    with op.batch_alter_table("step_outputs", schema=None) as batch_op:
        batch_op.create_index("ix_step_outputs_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_outputs", schema=None) as batch_op:
        batch_op.drop_index("ix_step_outputs_digest")
    op.drop_table("step_outputs")
    with op.batch_alter_table("step_executions", schema=None) as batch_op:
        batch_op.drop_index("ix_step_executions_cache_key_status_ended_at")
        batch_op.drop_index("ix_step_executions_pipeline_run_id")
    op.drop_table("step_executions")
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_runs_created_at")
        batch_op.drop_index("ix_pipeline_runs_pipeline_created_at")
    op.drop_table("pipeline_runs")
