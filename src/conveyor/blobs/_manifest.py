"""Manifests: how a directory is stored.

A directory becomes one canonical JSON document listing ``(path, digest, size)`` for every
file, sorted by path; the document is stored as an object of its own, so a directory has a
digest like any file and two identical trees share one manifest. Canonical means one byte
string per tree: sorted keys, no whitespace, UTF-8, so its digest is stable.

Format versions: ``1`` lists loose objects only; ``2`` (written only when some file lives in
a pack, see ``_pack.py``) adds ``"pack"`` and ``"offset"`` to those entries: the file's bytes
are ``size`` bytes at ``offset`` in the object ``pack``. A tree with no packed file is
still written as version 1, byte for byte as before, and both versions are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from conveyor.errors import InvalidInput

from ._digest import Digest
from ._safepath import check_relative_path

__all__ = ["MANIFEST_MEDIA_TYPE", "MANIFEST_VERSION", "Manifest", "ManifestEntry"]

MANIFEST_MEDIA_TYPE: Final = "application/vnd.conveyor.manifest+json"
MANIFEST_VERSION: Final = 1
#: The version written when at least one entry lives in a pack.
PACKED_MANIFEST_VERSION: Final = 2
_PLAIN_KEYS: Final = frozenset({"path", "digest", "size"})
_PACKED_KEYS: Final = frozenset({"path", "digest", "size", "pack", "offset"})


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a stored tree; ``path`` is checked on construction.

    ``pack``/``offset``: when set, the file is not an object of its own but ``size`` bytes
    at ``offset`` inside the object ``pack`` (read it with ``BlobStore.read_entry``).

    Example::

        >>> ManifestEntry("a/b.txt", Digest.parse("blake3:" + "0" * 64), 3).path
        'a/b.txt'
    """

    path: str
    digest: Digest
    size: int
    pack: Digest | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        check_relative_path(self.path)
        if not isinstance(self.digest, Digest):
            raise InvalidInput(f"entry {self.path!r}: digest must be a Digest", field="digest")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidInput(
                f"entry {self.path!r}: bad size {self.size!r}", field="size", value=self.size
            )
        if self.pack is not None and not isinstance(self.pack, Digest):
            raise InvalidInput(f"entry {self.path!r}: pack must be a Digest", field="pack")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise InvalidInput(f"entry {self.path!r}: bad offset {self.offset!r}", field="offset", value=self.offset)
        if self.pack is None and self.offset:
            raise InvalidInput(
                f"entry {self.path!r}: an offset without a pack", field="offset", value=self.offset,
                hint="an offset only makes sense for a file stored in a pack",
            )

    def to_doc(self) -> dict[str, object]:
        """The entry as it is written in the manifest document."""
        doc: dict[str, object] = {"path": self.path, "digest": str(self.digest), "size": self.size}
        if self.pack is not None:
            doc["pack"], doc["offset"] = str(self.pack), self.offset
        return doc


@dataclass(frozen=True, slots=True)
class Manifest:
    """A directory listing: entries sorted by path, each path unique and safe.

    Example::

        >>> m = Manifest.of([ManifestEntry("b", d, 1), ManifestEntry("a", d, 1)])  # doctest: +SKIP
        >>> [e.path for e in m.entries]  # doctest: +SKIP
        ['a', 'b']
    """

    entries: tuple[ManifestEntry, ...]

    def __post_init__(self) -> None:
        paths = [e.path for e in self.entries]
        if paths != sorted(paths):
            raise InvalidInput("manifest entries must be sorted by path", field="entries")
        files = set(paths)
        if len(files) != len(paths):
            raise InvalidInput("manifest has duplicate paths", field="entries")
        # A path that is also a parent of another ("a" and "a/b") cannot be materialized.
        for path in paths:
            parts = path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in files:
                    raise InvalidInput(
                        f"manifest path {path!r} lies under the file {'/'.join(parts[:i])!r}",
                        field="entries",
                        value=path,
                    )

    @classmethod
    def of(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        """Build a manifest from entries in any order.

        Example::

            >>> Manifest.of([]).total_size
            0
        """
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    @property
    def total_size(self) -> int:
        """Sum of the entry sizes, in bytes."""
        return sum(e.size for e in self.entries)

    def to_bytes(self) -> bytes:
        """The canonical JSON encoding (the bytes that get hashed and stored).

        Example::

            >>> Manifest.of([]).to_bytes()
            b'{"entries":[],"media_type":"application/vnd.conveyor.manifest+json","version":1}'
        """
        packed = any(e.pack is not None for e in self.entries)
        doc = {
            "media_type": MANIFEST_MEDIA_TYPE,
            "version": PACKED_MANIFEST_VERSION if packed else MANIFEST_VERSION,
            "entries": [e.to_doc() for e in self.entries],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and fully validate a stored manifest (paths included).

        Raises :class:`InvalidInput` (or its subclass ``UnsafePath``) on anything unexpected.

        Example::

            >>> Manifest.from_bytes(Manifest.of([]).to_bytes()).entries
            ()
        """
        try:
            doc: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"not a conveyor manifest: {exc}", field="manifest") from None
        except RecursionError:  # a hostile document nested thousands of levels deep
            raise InvalidInput("not a conveyor manifest: nested too deeply", field="manifest") from None
        if not isinstance(doc, dict) or doc.get("media_type") != MANIFEST_MEDIA_TYPE:
            raise InvalidInput("not a conveyor manifest (media_type missing)", field="manifest")
        version = doc.get("version")
        if isinstance(version, bool) or version not in (MANIFEST_VERSION, PACKED_MANIFEST_VERSION):
            raise InvalidInput(
                f"unsupported manifest version {version!r}",
                field="version",
                value=version,
                hint=f"this conveyor reads versions {MANIFEST_VERSION} and {PACKED_MANIFEST_VERSION}",
            )
        raw = doc.get("entries")
        if not isinstance(raw, list) or set(doc) != {"media_type", "version", "entries"}:
            raise InvalidInput("malformed manifest document", field="manifest")
        entries = []
        packed = False
        for item in raw:
            keys = set(item) if isinstance(item, dict) else None
            if keys != _PLAIN_KEYS and (keys != _PACKED_KEYS or version == MANIFEST_VERSION):
                raise InvalidInput(f"malformed manifest entry {item!r}", field="entries")
            pack = None
            if keys == _PACKED_KEYS:
                pack, packed = Digest.parse(item["pack"]), True
            entries.append(ManifestEntry(
                check_relative_path(item["path"]), Digest.parse(item["digest"]), item["size"],
                pack, item.get("offset", 0),
            ))
        if version == PACKED_MANIFEST_VERSION and not packed:
            # Canonical: one byte string per tree, so a tree without packs is version 1.
            raise InvalidInput("manifest version 2 without any packed entry", field="version", value=version)
        # Sortedness is enforced by __post_init__: a non-canonical document is refused.
        return cls(tuple(entries))
