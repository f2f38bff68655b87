"""What changed between two versions: files for folders, rows/schema/statistics for tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.blobs import Digest

from conveyor.data._context import blobs_for
from conveyor.data._refs import DatasetRef
from conveyor.data._versions import get_version

__all__ = ["DatasetDiff", "diff"]

_STATS = ("null_rate", "min", "max", "mean", "std", "distinct")


@dataclass(frozen=True)
class DatasetDiff:
    """Differences from version ``a`` to version ``b``.

    ``changed_columns`` maps a column to ``{statistic: (a, b)}`` for statistics that moved;
    ``schema_changes`` lists columns added, removed or retyped.
    """

    a: str
    b: str
    same_content: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    rows: tuple[int, int] | None = None
    schema_changes: tuple[str, ...] = ()
    changed_columns: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "same_content": self.same_content, "added": list(self.added),
            "removed": list(self.removed), "changed": list(self.changed), "rows": self.rows,
            "schema_changes": list(self.schema_changes),
            "changed_columns": {c: {k: list(v) for k, v in s.items()} for c, s in self.changed_columns.items()},
        }


def _files(blobs: Any, version: Any, label: str) -> dict[str, str]:
    if version.kind == "folder":
        return {e.path: str(e.digest) for e in blobs.read_manifest(Digest.parse(version.digest)).entries}
    return {label: version.digest}  # one file: only its content can change, not its name


def diff(a: str | DatasetRef, b: str | DatasetRef, *, tracker: Any = None) -> DatasetDiff:
    """Compare two versions (usually of the same data set).

    Example::

        >>> d = conveyor.data.diff("images@1", "images@2")  # doctest: +SKIP
        >>> d.added, d.changed  # doctest: +SKIP
        (('new.png',), ('cat.png',))
    """
    va, vb = get_version(a, tracker=tracker), get_version(b, tracker=tracker)
    label = vb.source.rsplit("/", 1)[-1]
    fa = _files(blobs_for(tracker, va.name, va.version), va, label)
    fb = _files(blobs_for(tracker, vb.name, vb.version), vb, label)
    added = tuple(sorted(set(fb) - set(fa)))
    removed = tuple(sorted(set(fa) - set(fb)))
    changed = tuple(sorted(p for p in set(fa) & set(fb) if fa[p] != fb[p]))
    if va.profile is None or vb.profile is None:
        return DatasetDiff(va.ref, vb.ref, va.digest == vb.digest, added, removed, changed)
    ca, cb = va.profile["columns"], vb.profile["columns"]
    schema = [f"+ {c} ({cb[c]['type']})" for c in cb if c not in ca]
    schema += [f"- {c} ({ca[c]['type']})" for c in ca if c not in cb]
    schema += [f"~ {c}: {ca[c]['type']} → {cb[c]['type']}" for c in ca if c in cb and ca[c]["type"] != cb[c]["type"]]
    shifts: dict[str, dict[str, tuple[Any, Any]]] = {}
    for column in (c for c in ca if c in cb):
        moved = {s: (ca[column].get(s), cb[column].get(s)) for s in _STATS if ca[column].get(s) != cb[column].get(s)}
        new_cats = set(cb[column].get("categories") or ()) - set(ca[column].get("categories") or ())
        if new_cats:
            moved["new_categories"] = (None, sorted(new_cats))
        if moved:
            shifts[column] = moved
    return DatasetDiff(
        va.ref, vb.ref, va.digest == vb.digest, added, removed, changed,
        (va.profile["rows"], vb.profile["rows"]), tuple(schema), shifts,
    )
