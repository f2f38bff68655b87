"""registry: registered models, versions, aliases, events and gate evaluations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
#: Whether a client one revision older keeps working on this schema (see store/_compat.py).
additive = True

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"], ["registered_models.id"],
        name=op.f(f"fk_{table}_model_id_registered_models"), ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.Column("updated_at", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("name", name=op.f("uq_registered_models_name")),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("is_dir", sa.Boolean(), nullable=False),
        sa.Column("size", BigInt, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("data_versions", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.Column("updated_at", BigInt, nullable=False),
        _model_fk("model_versions"),
        sa.PrimaryKeyConstraint("model_id", "version", name=op.f("pk_model_versions")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_digest", ["digest"], unique=False)
        batch_op.create_index("ix_model_versions_run_id", ["run_id"], unique=False)

    op.create_table(
        "model_version_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _model_fk("model_version_tags"),
        sa.PrimaryKeyConstraint("model_id", "version", "key", name=op.f("pk_model_version_tags")),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", BigInt, nullable=False),
        _model_fk("model_aliases"),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_model_aliases")),
    )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_model_aliases_model_id_version", ["model_id", "version"], unique=False)

    op.create_table(
        "registry_events",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=True),
        sa.Column("from_value", sa.String(length=256), nullable=True),
        sa.Column("to_value", sa.String(length=256), nullable=True),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("at", BigInt, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("evaluation_id", sa.String(length=32), nullable=True),
        _model_fk("registry_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_events")),
    )
    with op.batch_alter_table("registry_events", schema=None) as batch_op:
        batch_op.create_index("ix_registry_events_model_id_alias_at", ["model_id", "alias", "at"], unique=False)
        batch_op.create_index("ix_registry_events_model_id_at", ["model_id", "at"], unique=False)

    op.create_table(
        "gate_evaluations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(length=256), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=True),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("n_rows", BigInt, nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        _model_fk("gate_evaluations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_evaluations")),
    )
    with op.batch_alter_table("gate_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gate_evaluations_model_id_version_created_at", ["model_id", "version", "created_at"], unique=False
        )


def downgrade() -> None:
    for table, indexes in (
        ("gate_evaluations", ["ix_gate_evaluations_model_id_version_created_at"]),
        ("registry_events", ["ix_registry_events_model_id_at", "ix_registry_events_model_id_alias_at"]),
        ("model_aliases", ["ix_model_aliases_model_id_version"]),
        ("model_version_tags", []),
        ("model_versions", ["ix_model_versions_run_id", "ix_model_versions_digest"]),
        ("registered_models", []),
    ):
        if indexes:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for index in indexes:
                    batch_op.drop_index(index)
        op.drop_table(table)
