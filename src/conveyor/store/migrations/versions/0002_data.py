"""data: data sets, versions and lineage (issue: data sets and pipelines)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Written by hand to match ``conveyor.store._datasets`` and ``conveyor.store._lineage``.
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
#: Whether a client one revision older keeps working on this schema (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("size", _BIGINT, nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"],
            name=op.f("fk_dataset_versions_dataset_id_datasets"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "version", name=op.f("pk_dataset_versions")),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_versions_digest", ["digest"], unique=False)

    op.create_table(
        "lineage_edges",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("upstream_kind", sa.String(length=32), nullable=False),
        sa.Column("upstream_id", sa.String(length=512), nullable=False),
        sa.Column("downstream_kind", sa.String(length=32), nullable=False),
        sa.Column("downstream_id", sa.String(length=512), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edges")),
        sa.UniqueConstraint(
            "upstream_kind", "upstream_id", "downstream_kind", "downstream_id", "relation",
            name=op.f("uq_lineage_edges_edge"),
        ),
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lineage_edges_downstream_kind_downstream_id", ["downstream_kind", "downstream_id"], unique=False
        )
        batch_op.create_index("ix_lineage_edges_run_id", ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_run_id")
        batch_op.drop_index("ix_lineage_edges_downstream_kind_downstream_id")
    op.drop_table("lineage_edges")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_digest")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
