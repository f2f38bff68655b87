"""Value objects of ``conveyor.data``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conveyor.store import VersionRow

__all__ = ["DatasetVersion"]


@dataclass(frozen=True)
class DatasetVersion:
    """One version of a data set.

    ``kind`` is ``file``, ``folder`` (``digest`` names a manifest) or ``table`` (a CSV or
    Parquet file, ``format`` says which, ``profile`` holds its schema and statistics).
    ``created`` is False when :func:`conveyor.data.add` found the content unchanged.

    Example::

        >>> v = conveyor.data.add("data/train.csv", name="train")  # doctest: +SKIP
        >>> v.ref, v.kind, v.created  # doctest: +SKIP
        ('data:/train@1', 'table', True)
    """

    name: str
    version: int
    digest: str
    kind: str
    format: str | None
    size: int
    file_count: int
    source: str
    created_at: int
    run_id: str | None = None
    profile: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    created: bool = False

    @property
    def ref(self) -> str:
        return f"data:/{self.name}@{self.version}"

    @property
    def is_table(self) -> bool:
        return self.kind == "table"

    @classmethod
    def from_row(cls, row: VersionRow, *, created: bool = False) -> DatasetVersion:
        profile = json.loads(row.profile) if row.profile else None
        return cls(
            row.name, row.version, row.digest, row.kind, row.format, row.size, row.file_count, row.source,
            row.created_at, row.run_id, profile, created,
        )

    def to_dict(self, *, profile: bool = True) -> dict[str, Any]:
        out = {
            "ref": self.ref, "name": self.name, "version": self.version, "digest": self.digest, "kind": self.kind,
            "format": self.format, "size": self.size, "file_count": self.file_count, "source": self.source,
            "created_at": self.created_at, "run_id": self.run_id, "created": self.created,
        }
        if profile:
            out["profile"] = self.profile
        return out
