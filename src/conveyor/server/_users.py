"""Users, API tokens and roles of ``conveyor server``, kept in the metadata store.

- A password is stored only as an scrypt hash (``hashlib.scrypt``, N=2^15, r=8, p=3: the
  OWASP-recommended cost, 32 MiB per check), with a random 16-byte salt. A verified password
  is remembered in this process (an HMAC under a per-process key, next to the stored hash),
  so the mlflow client's Basic auth does not pay the KDF on every request; changing or
  disabling the user ends it.
- A token is ``cvt_`` + 256 random bits, shown once; only its SHA-256 is stored (there is
  no password to guess at that entropy, so a fast hash is enough) and looked up by it.
- A web UI session (a password sign-in on the login page) is a token like any other, named
  ``ui-session-<expiry in ms since the epoch>-<random>``: :meth:`Users.by_token` refuses it
  once that time has passed, signing out revokes it, and no other token may take that prefix.
- A role is ``read`` < ``edit`` < ``manage`` on one experiment (by id), registered model
  (by name) or data set (by name); a user without one has ``[server] default_role``.

The token file of earlier versions (``.conveyor/server-tokens.json``) is imported once by
:meth:`Users.import_legacy`: each token becomes a token of an admin user of its name
(those tokens could do everything), and the file is renamed ``….imported``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from conveyor.entities import now_ms
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.store import api_tokens, roles, users

TOKEN_PREFIX = "cvt_"
LEVELS = {"read": 1, "edit": 2, "manage": 3}
KINDS = ("experiment", "model", "data")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SCRYPT = {"n": 2**15, "r": 8, "p": 3}
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 8
#: Names of the web UI's session tokens; reserved (``create_token`` refuses them).
SESSION_PREFIX = "ui-session-"


@dataclass(frozen=True)
class Principal:
    """Who sent a request: a user, whether they are an admin, and the token they used."""

    name: str
    is_admin: bool = False
    token: str | None = None


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    created_at: int
    disabled_at: int | None
    has_password: bool

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Token:
    user: str
    name: str
    created_at: int
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Role:
    user: str
    kind: str
    resource: str
    level: str
    granted_by: str
    granted_at: int


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=_MAXMEM, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected), maxmem=_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def session_expiry(name: str) -> int | None:
    """When the web UI session token ``name`` expires (ms since the epoch); None for an API token."""
    if not name.startswith(SESSION_PREFIX):
        return None
    stamp = name[len(SESSION_PREFIX):].partition("-")[0]
    return int(stamp) if stamp.isdigit() else 0  # a malformed session name has expired


def session_expired(name: str, now: int) -> bool:
    expiry = session_expiry(name)
    return expiry is not None and now >= expiry


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"{what} name {name!r} is not valid", field=what, value=name,
                           hint="letters, digits, '.', '_', '-' and '@', starting with a letter or digit, "
                                "at most 64 characters")
    return name


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise InvalidInput(f"role {level!r} is not valid", field="role", value=level, hint="read, edit or manage")
    return level


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"resource kind {kind!r} is not valid", field="kind", value=kind,
                           hint="experiment, model or data")
    return kind


class Users:
    """The users, tokens and roles in one metadata store (``tracker.store``)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, str, bytes], bool] = {}
        self._lock = threading.Lock()

    # -- users ------------------------------------------------------------------------------
    def add(self, name: str, *, password: str | None = None, admin: bool = False) -> User:
        check_name("user", name)
        hashed = self._checked_hash(password) if password is not None else None
        created = now_ms()

        def body(conn: Any) -> None:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise AlreadyExists("user", name, hint=f"`conveyor users list` shows it; "
                                    f"`conveyor users enable {name}` turns a disabled user back on")
            conn.execute(insert(users).values(name=name, password_hash=hashed, is_admin=admin,
                                              created_at=created, disabled_at=None))

        # once: a retry after a lost COMMIT acknowledgement must not find "its" user and refuse
        self.store.transaction(body, once=True, what=f"adding user {name!r}")
        return self.get(name)

    @staticmethod
    def _checked_hash(password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"the password is too short ({len(password)} characters)", field="password",
                               value="<hidden>", hint=f"use at least {MIN_PASSWORD} characters")
        return hash_password(password)

    def set_password(self, name: str, password: str | None) -> None:
        hashed = self._checked_hash(password) if password is not None else None
        self._update(name, password_hash=hashed)

    def set_admin(self, name: str, admin: bool) -> None:
        self._update(name, is_admin=admin)

    def disable(self, name: str) -> None:
        self._update(name, disabled_at=now_ms())

    def enable(self, name: str) -> None:
        self._update(name, disabled_at=None)

    def _update(self, name: str, **values: Any) -> None:
        self._change(update(users).where(users.c.name == name).values(**values),
                     NotFound("user", name, hint="`conveyor users list` shows the users"), f"updating user {name!r}")

    def _change(self, statement: Any, missing: Exception | None, what: str) -> bool:
        """Run one UPDATE or DELETE, retried through a database blink, exactly once (a retry after
        a lost acknowledgement would otherwise match no row and call the thing missing); raise
        ``missing`` (when given) if it matched no row; whether it matched one."""
        changed = bool(self.store.transaction(lambda conn: conn.execute(statement).rowcount > 0, once=True, what=what))
        if not changed and missing is not None:
            raise missing
        return changed

    def _read(self, body: Any, what: str) -> Any:
        return self.store.query(body, what=what)

    def get(self, name: str) -> User:
        row = self._read(lambda conn: conn.execute(select(users).where(users.c.name == name)).first(),
                         f"reading user {name!r}")
        if row is None:
            raise NotFound("user", name, hint="`conveyor users list` shows the users")
        return _user(row)

    def list(self) -> list[User]:
        return self._read(lambda conn: [_user(r) for r in conn.execute(select(users).order_by(users.c.name))],
                          "listing users")

    def any_active(self) -> bool:
        query = select(users.c.name).where(users.c.disabled_at.is_(None)).limit(1)
        return bool(self._read(lambda conn: conn.execute(query).first() is not None, "looking for users"))

    # -- tokens -----------------------------------------------------------------------------
    def create_token(self, user: str, name: str) -> str:
        """A new token of ``user``; the only time its text exists outside the caller."""
        check_name("token", name)
        if name.startswith(SESSION_PREFIX):
            raise InvalidInput(f"token name {name!r} is reserved for web UI sessions", field="token", value=name,
                               hint=f"choose a name that does not start with {SESSION_PREFIX!r}")
        return self._create_token(user, name)

    def create_session(self, user: str, hours: float) -> str:
        """A web UI session token of ``user`` valid for ``hours``; the user's sessions that have
        already expired are revoked on the way (so the table does not fill up with them)."""
        expires = now_ms() + int(hours * 3_600_000)
        self._revoke_expired_sessions(user)
        return self._create_token(user, f"{SESSION_PREFIX}{expires}-{secrets.token_hex(6)}")

    def end_session(self, token: str) -> bool:
        """Revoke the web UI session ``token`` (never an API token); whether one was active."""
        if not token.startswith(TOKEN_PREFIX):
            return False
        return self._change(update(api_tokens).where(
            api_tokens.c.sha256 == token_digest(token), api_tokens.c.name.startswith(SESSION_PREFIX, autoescape=True),
            api_tokens.c.revoked_at.is_(None),
        ).values(revoked_at=now_ms()), None, "ending a web UI session")

    def _revoke_expired_sessions(self, user: str) -> None:
        now = now_ms()
        query = select(api_tokens.c.id, api_tokens.c.name).where(
            api_tokens.c.user_name == user, api_tokens.c.revoked_at.is_(None),
            api_tokens.c.name.startswith(SESSION_PREFIX, autoescape=True))
        def body(conn: Any) -> None:  # idempotent: a plain retry revokes the same ones
            expired = [r.id for r in conn.execute(query) if session_expired(r.name, now)]
            if expired:
                conn.execute(update(api_tokens).where(api_tokens.c.id.in_(expired)).values(revoked_at=now))

        self.store.transaction(body, what="revoking expired web UI sessions")

    def _create_token(self, user: str, name: str) -> str:
        token = new_token()
        created = now_ms()

        def body(conn: Any) -> None:
            _require_user(conn, user)
            active = select(api_tokens.c.id).where(api_tokens.c.user_name == user, api_tokens.c.name == name,
                                                   api_tokens.c.revoked_at.is_(None))
            if conn.execute(active).first() is not None:
                raise AlreadyExists("token", f"{user}/{name}",
                                    hint=f"revoke it first: `conveyor tokens revoke {name} --user {user}`")
            conn.execute(insert(api_tokens).values(user_name=user, name=name, sha256=token_digest(token),
                                                   created_at=created, revoked_at=None))

        # once: a retry after a lost acknowledgement must not find "its" token and refuse
        self.store.transaction(body, once=True, what=f"creating token {name!r} of {user!r}")
        return token

    def revoke_token(self, user: str, name: str) -> None:
        self._change(update(api_tokens).where(
            api_tokens.c.user_name == user, api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None),
        ).values(revoked_at=now_ms()), NotFound("token", f"{user}/{name}", hint="`conveyor tokens list` shows the active ones"),
            f"revoking token {name!r} of {user!r}")

    def tokens(self, user: str | None = None) -> list[Token]:
        query = select(api_tokens).order_by(api_tokens.c.user_name, api_tokens.c.id)
        if user is not None:
            query = query.where(api_tokens.c.user_name == user)
        return self._read(lambda conn: [Token(r.user_name, r.name, r.created_at, r.revoked_at)
                                        for r in conn.execute(query)], "listing tokens")

    # -- authentication ---------------------------------------------------------------------
    def by_token(self, token: str) -> Principal | None:
        """The active user an unrevoked (and, for a web UI session, unexpired) token belongs to,
        else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        query = (select(users.c.name, users.c.is_admin, api_tokens.c.name.label("token"))
                 .select_from(api_tokens.join(users, users.c.name == api_tokens.c.user_name))
                 .where(api_tokens.c.sha256 == token_digest(token), api_tokens.c.revoked_at.is_(None),
                        users.c.disabled_at.is_(None)))
        row = self._read(lambda conn: conn.execute(query).first(), "checking a token")
        if row is None or session_expired(row.token, now_ms()):
            return None
        return Principal(row.name, bool(row.is_admin), row.token)

    def by_password(self, name: str, password: str) -> Principal | None:
        """The active user ``name`` when ``password`` is theirs, else None."""
        row = self._read(lambda conn: conn.execute(select(users).where(users.c.name == name)).first(),
                         "checking a password")
        if row is None or row.disabled_at is not None or not row.password_hash:
            return None
        key = (name, row.password_hash, hmac.new(self._key, password.encode("utf-8"), "sha256").digest())
        with self._lock:
            known = key in self._verified
        if not known:
            if not verify_password(password, row.password_hash):
                return None
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = True
        return Principal(name, bool(row.is_admin))

    # -- roles ------------------------------------------------------------------------------
    def grant(self, user: str, kind: str, resource: str, level: str, *, by: str = "") -> None:
        check_kind(kind)
        check_level(level)
        granted = now_ms()

        def body(conn: Any) -> None:  # a replace: a plain retry leaves the same one row
            _require_user(conn, user)
            where = (roles.c.user_name == user, roles.c.kind == kind, roles.c.resource == resource)
            conn.execute(delete(roles).where(*where))
            conn.execute(insert(roles).values(user_name=user, kind=kind, resource=resource, level=level,
                                              granted_by=by, granted_at=granted))

        self.store.transaction(body, what=f"granting {user!r} a role")

    def revoke_role(self, user: str, kind: str, resource: str) -> None:
        check_kind(kind)
        self._change(delete(roles).where(roles.c.user_name == user, roles.c.kind == kind, roles.c.resource == resource),
                     NotFound("role", f"{user} on {kind} {resource}", hint="`conveyor roles list` shows them"),
                     f"revoking the role of {user!r}")

    def roles(self, user: str | None = None, kind: str | None = None, resource: str | None = None) -> list[Role]:
        query = select(roles).order_by(roles.c.kind, roles.c.resource, roles.c.user_name)
        if user is not None:
            query = query.where(roles.c.user_name == user)
        if kind is not None:
            query = query.where(roles.c.kind == kind)
        if resource is not None:
            query = query.where(roles.c.resource == resource)
        return self._read(lambda conn: [Role(r.user_name, r.kind, r.resource, r.level, r.granted_by, r.granted_at)
                                        for r in conn.execute(query)], "listing roles")

    def levels_of(self, user: str, kind: str, resources: list[str] | None = None) -> dict[str, str]:
        """``user``'s explicit roles on ``kind`` (on ``resources`` only, when given)."""
        query = select(roles.c.resource, roles.c.level).where(roles.c.user_name == user, roles.c.kind == kind)
        if resources is not None:
            if len(resources) == 1:
                query = query.where(roles.c.resource == resources[0])
            elif len(resources) <= 500:
                query = query.where(roles.c.resource.in_(resources))
        return self._read(lambda conn: {r.resource: r.level for r in conn.execute(query)}, "reading roles")

    # -- the token file of earlier versions -----------------------------------------------
    def import_legacy(self, conveyor_dir: Path) -> list[str]:
        """Move ``server-tokens.json`` into the store (once); the names of the users made."""
        from conveyor.server._tokens import FILE_NAME, TokenStore

        path = conveyor_dir / FILE_NAME
        if not path.exists():
            return []
        records = TokenStore(path).records()

        def body(conn: Any) -> list[str]:
            made: list[str] = []
            for record in records:
                name = record.name if _NAME.match(record.name) else "legacy-" + record.sha256[:8]
                if conn.execute(select(users.c.name).where(users.c.name == name)).first() is None:
                    conn.execute(insert(users).values(name=name, password_hash=None, is_admin=True,
                                                      created_at=record.created_at, disabled_at=None))
                    made.append(name)
                if conn.execute(select(api_tokens.c.id).where(api_tokens.c.sha256 == record.sha256)).first() is None:
                    conn.execute(insert(api_tokens).values(
                        user_name=name, name="legacy", sha256=record.sha256, created_at=record.created_at,
                        revoked_at=record.revoked_at))
            return made

        # once: the names made are the first attempt's, even when its acknowledgement was lost
        made: list[str] = self.store.transaction(body, once=True, what="importing the legacy token file")
        path.replace(path.with_name(FILE_NAME + ".imported"))
        return made


def new_token() -> str:
    """A new API token: the prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _require_user(conn: Any, user: str) -> None:
    if conn.execute(select(users.c.name).where(users.c.name == user)).first() is None:
        raise NotFound("user", user, hint=f"add it first: `conveyor users add {user}`")


def _user(row: Any) -> User:
    return User(row.name, bool(row.is_admin), row.created_at, row.disabled_at, bool(row.password_hash))
