"""serving: index of prediction-log and feedback Parquet files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
#: Whether a client one revision older keeps working on this schema (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "serving_log_files",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("hour", _BIGINT, nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("size", _BIGINT, nullable=False),
        sa.Column("first_ts", _BIGINT, nullable=False),
        sa.Column("last_ts", _BIGINT, nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_log_files")),
    )
    with op.batch_alter_table("serving_log_files", schema=None) as batch_op:
        batch_op.create_index(
            "ix_serving_log_files_kind_model_version_hour", ["kind", "model", "version", "hour"], unique=False
        )
        batch_op.create_index("ix_serving_log_files_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serving_log_files", schema=None) as batch_op:
        batch_op.drop_index("ix_serving_log_files_digest")
        batch_op.drop_index("ix_serving_log_files_kind_model_version_hour")
    op.drop_table("serving_log_files")
