"""The token file of earlier versions (before users): kept to read it once.

Tokens now belong to users in the metadata store (``conveyor.server._users``); the first
``conveyor server``, ``users``, ``tokens`` or ``roles`` command imports this file
(``Users.import_legacy``) and renames it. What follows describes the old format.

API tokens of the server: made once, shown once, stored only as SHA-256 hashes.

The token file (``.conveyor/server-tokens.json`` of the project, mode 0600) holds, per
token, its name, the hash, when it was made and when it was revoked. The server re-reads
the file when it changes, so ``conveyor tokens revoke`` takes effect on the next request
without a restart. A token is 256 random bits; hashing without a salt is enough for that
entropy (there is no password to guess), and comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conveyor.entities import now_ms
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.server._users import new_token
from conveyor.server._users import token_digest as _digest

FILE_NAME = "server-tokens.json"


@dataclass(frozen=True)
class TokenRecord:
    name: str
    sha256: str
    created_at: int
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenStore:
    """The tokens of one project (``conveyor_dir / server-tokens.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._records: list[TokenRecord] = []

    @classmethod
    def of(cls, conveyor_dir: Path) -> TokenStore:
        return cls(conveyor_dir / FILE_NAME)

    def records(self) -> list[TokenRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, []
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
            self._records = [TokenRecord(**r) for r in data.get("tokens", [])]
            self._stamp = stamp
        return list(self._records)

    def _write(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"tokens": [asdict(r) for r in records]}, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)  # readers see the old file or the new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create(self, name: str) -> str:
        """A new token for ``name``; the only time its text exists outside the caller."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
            raise InvalidInput(f"token name {name!r} is not valid", field="name", value=name,
                               hint="letters, digits, '-', '_' and '.', at most 64 characters")
        records = self.records()
        if any(r.name == name and r.active for r in records):
            raise AlreadyExists("token", name, hint=f"revoke it first: `conveyor tokens revoke {name}`")
        token = new_token()
        self._write([*records, TokenRecord(name, _digest(token), now_ms())])
        return token

    def revoke(self, name: str) -> None:
        records = self.records()
        if not any(r.name == name and r.active for r in records):
            raise NotFound("token", name, hint="`conveyor tokens list` shows the active ones")
        now = now_ms()
        self._write([TokenRecord(r.name, r.sha256, r.created_at, now) if r.name == name and r.active else r
                     for r in records])

    def any_active(self) -> bool:
        return any(r.active for r in self.records())

    def check(self, token: str) -> str | None:
        """The name of the active token ``token`` is, else ``None`` (constant-time compare)."""
        digest = _digest(token)
        found = None
        for record in self.records():
            if hmac.compare_digest(record.sha256, digest) and record.active:
                found = record.name
        return found
