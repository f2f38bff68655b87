"""The stat cache: (size, mtime_ns, inode) of a file → the digest it had.

A file whose stat is unchanged is not read again, which makes re-adding an unchanged
10,000-file folder a matter of stat calls. It is a small SQLite file (WAL, busy timeout)
under ``.conveyor/``, so several processes adding at once simply take turns to write;
losing it only costs re-hashing. The stat is taken *before* hashing: a file modified
while it is read gets a new mtime, so it is hashed again next time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

__all__ = ["StatCache", "StatKey"]

#: (size, mtime_ns, inode)
StatKey = tuple[int, int, int]


class StatCache:
    """Path → (stat key, digest). Opened per operation; cheap."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, digest TEXT NOT NULL) WITHOUT ROWID"
        )
        # A folder's fingerprint (a hash of every file's path and stat key) → its manifest:
        # an unchanged folder is answered without building the manifest again.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS folder (path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
            "digest TEXT NOT NULL, size INTEGER NOT NULL, files INTEGER NOT NULL) WITHOUT ROWID"
        )
        # A folder → the data set it was last added to (what `data status PATH` compares
        # with when no name is given; remote mode knows it only from here).
        conn.execute("CREATE TABLE IF NOT EXISTS added (path TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID")
        return conn

    def remember_added(self, root: str, name: str) -> None:
        """Record that the absolute folder ``root`` was just added to data set ``name``."""
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO added VALUES (?, ?)", (root, name))
        except sqlite3.DatabaseError:
            pass
        finally:
            conn.close()

    def added_to(self, root: str) -> str | None:
        """The data set the absolute folder ``root`` was last added to from this project, or None."""
        try:
            conn = self._connect()
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT name FROM added WHERE path = ?", (root,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        finally:
            conn.close()
        return None if row is None else str(row[0])

    def lookup_tree(self, root: str) -> dict[str, tuple[StatKey, str]]:
        """Every cached file under the absolute folder ``root``."""
        prefix = root.rstrip("/") + "/"
        # "0" sorts right after "/": the range covers exactly the paths under the prefix.
        return self._select("SELECT path, size, mtime_ns, inode, digest FROM stat WHERE path >= ? AND path < ?",
                            (prefix, prefix[:-1] + "0"))

    def lookup(self, path: str) -> tuple[StatKey, str] | None:
        return self._select("SELECT path, size, mtime_ns, inode, digest FROM stat WHERE path = ?", (path,)).get(path)

    def lookup_folder(self, root: str, fingerprint: str) -> tuple[str, int, int] | None:
        """(manifest digest, total size, file count) if ``root`` last had this fingerprint."""
        try:
            conn = self._connect()
        except sqlite3.Error:
            return None
        try:
            row = conn.execute(
                "SELECT digest, size, files FROM folder WHERE path = ? AND fingerprint = ?", (root, fingerprint)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None
        finally:
            conn.close()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def update_folder(self, root: str, fingerprint: str, digest: str, size: int, files: int) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO folder VALUES (?, ?, ?, ?, ?)", (root, fingerprint, digest, size, files))
        except sqlite3.DatabaseError:
            pass
        finally:
            conn.close()

    def _select(self, sql: str, args: tuple[str, ...]) -> dict[str, tuple[StatKey, str]]:
        try:
            conn = self._connect()
        except sqlite3.Error:
            return {}  # an unreadable cache only costs hashing
        try:
            return {p: ((s, m, i), d) for p, s, m, i, d in conn.execute(sql, args)}
        except sqlite3.DatabaseError:
            return {}
        finally:
            conn.close()

    def update(self, rows: Iterable[tuple[str, StatKey, str]]) -> None:
        """Remember ``(path, stat key, digest)`` rows, in one transaction."""
        data = [(p, k[0], k[1], k[2], d) for p, k, d in rows]
        if not data:
            return
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?)", data)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError:
            conn.close()
            return
        conn.close()
