"""monitoring: reference summaries, evaluations, alerts, notifications, retraining triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
#: Whether a client one revision older keeps working on this schema (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_references",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("n_rows", _BIGINT, nullable=False),
        sa.Column("n_columns", sa.Integer(), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_monitor_references")),
    )
    with op.batch_alter_table("monitor_references", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_references_digest", ["digest"], unique=False)

    op.create_table(
        "monitor_evaluations",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("window_start", _BIGINT, nullable=True),
        sa.Column("window_end", _BIGINT, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("report_digest", sa.String(length=80), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_evaluations")),
    )
    with op.batch_alter_table("monitor_evaluations", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_evaluations_monitor_created_at", ["monitor", "created_at"], unique=False)
        batch_op.create_index("ix_monitor_evaluations_model_created_at", ["model", "created_at"], unique=False)
        batch_op.create_index("ix_monitor_evaluations_report_digest", ["report_digest"], unique=False)

    op.create_table(
        "monitor_alerts",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("evaluation_id", _BIGINT, nullable=True),
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["monitor_evaluations.id"],
                                name=op.f("fk_monitor_alerts_evaluation_id_monitor_evaluations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alerts")),
    )
    with op.batch_alter_table("monitor_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_alerts_evaluation_id", ["evaluation_id"], unique=False)
        batch_op.create_index("ix_monitor_alerts_model_created_at", ["model", "created_at"], unique=False)

    op.create_table(
        "monitor_notifications",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("alert_id", _BIGINT, nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["monitor_alerts.id"],
                                name=op.f("fk_monitor_notifications_alert_id_monitor_alerts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_notifications")),
    )
    with op.batch_alter_table("monitor_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_notifications_alert_id", ["alert_id"], unique=False)

    op.create_table(
        "retrain_triggers",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("alert_id", _BIGINT, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lock_key", sa.String(length=256), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("finished_at", _BIGINT, nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["monitor_alerts.id"],
                                name=op.f("fk_retrain_triggers_alert_id_monitor_alerts"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_triggers")),
        sa.UniqueConstraint("lock_key", name=op.f("uq_retrain_triggers_lock_key")),
    )
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.create_index("ix_retrain_triggers_model_created_at", ["model", "created_at"], unique=False)
        batch_op.create_index("ix_retrain_triggers_alert_id", ["alert_id"], unique=False)
        batch_op.create_index("ix_retrain_triggers_run_id", ["run_id"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("retrain_triggers", ["ix_retrain_triggers_run_id", "ix_retrain_triggers_alert_id",
                              "ix_retrain_triggers_model_created_at"]),
        ("monitor_notifications", ["ix_monitor_notifications_alert_id"]),
        ("monitor_alerts", ["ix_monitor_alerts_model_created_at", "ix_monitor_alerts_evaluation_id"]),
        ("monitor_evaluations", ["ix_monitor_evaluations_report_digest", "ix_monitor_evaluations_model_created_at",
                                 "ix_monitor_evaluations_monitor_created_at"]),
        ("monitor_references", ["ix_monitor_references_digest"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
