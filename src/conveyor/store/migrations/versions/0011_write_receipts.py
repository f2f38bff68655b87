"""write_receipts: a retried transaction whose commit acknowledgement was lost runs once

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
#: A new table only: a client at 0010 keeps working (see store/_compat.py).
additive = True

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "write_receipts",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("at", _BIGINT, nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_write_receipts")),
    )


def downgrade() -> None:
    op.drop_table("write_receipts")
