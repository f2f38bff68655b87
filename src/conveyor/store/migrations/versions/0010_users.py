"""users, API tokens (hashed) and roles of the team server

New tables only, so a client at 0009 keeps working (it never reads them).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
#: Only new tables: a client at 0009 keeps working (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("disabled_at", _BIGINT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("revoked_at", _BIGINT, nullable=True),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"], name=op.f("fk_api_tokens_user_name_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("sha256", name=op.f("uq_api_tokens_sha256")),
    )
    op.create_index("ix_api_tokens_user_name_name", "api_tokens", ["user_name", "name"], unique=False)
    op.create_table(
        "roles",
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.String(length=256), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("granted_at", _BIGINT, nullable=False),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"], name=op.f("fk_roles_user_name_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_name", "kind", "resource", name=op.f("pk_roles")),
    )
    op.create_index("ix_roles_kind_resource", "roles", ["kind", "resource"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_roles_kind_resource", table_name="roles")
    op.drop_table("roles")
    op.drop_index("ix_api_tokens_user_name_name", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
