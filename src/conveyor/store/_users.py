"""Users, API tokens and roles of the team server (``conveyor server``).

A user has a name, an optional password (only its scrypt hash is stored), an admin flag
and a ``disabled_at`` time. An API token belongs to one user; only its SHA-256 is stored.
A role grants one user ``read``, ``edit`` or ``manage`` on one experiment (by id) or one
registered model (by name). The rules that use these rows live in ``conveyor.server``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from conveyor.store._schema import BigInt, metadata

users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", Text),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", BigInt, nullable=False),
    Column("disabled_at", BigInt),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_name", String(64), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("created_at", BigInt, nullable=False),
    Column("revoked_at", BigInt),
    Index("ix_api_tokens_user_name_name", "user_name", "name"),
)

roles = Table(
    "roles",
    metadata,
    Column("user_name", String(64), ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("resource", String(256), primary_key=True),
    Column("level", String(8), nullable=False),
    Column("granted_by", String(64), nullable=False, default=""),
    Column("granted_at", BigInt, nullable=False),
    Index("ix_roles_kind_resource", "kind", "resource"),
)
