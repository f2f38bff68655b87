"""``conveyor-model.json``: the description every model package carries."""

from __future__ import annotations

import json
import platform
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.entities import Signature
from conveyor.errors import CorruptObject, InvalidInput, NotFound, UnsafePath

META_FILE = "conveyor-model.json"
FORMAT_VERSION = 1
#: always pinned, whatever the flavor: every package hands numpy/pandas data to its model
BASE_REQUIREMENTS = ("numpy", "pandas")
#: the largest conveyor-model.json read (a description with a big signature is a few KB)
MAX_META_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModelMeta:
    """The parsed ``conveyor-model.json`` of a model package."""

    flavor: str
    flavor_config: Mapping[str, Any]
    signature: Signature | None = None
    input_example: str | None = None
    requirements: tuple[str, ...] = ()
    conveyor_version: str = ""
    python_version: str = ""
    created_at: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    #: every file of the package (relative POSIX name → bytes), checked before loading reads one
    files: Mapping[str, int] | None = None
    #: the code the package names (``Reference.to_dict()``: name, kind, vetted), recorded at save
    references: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_config": dict(self.flavor_config),
            "signature": self.signature.to_dict() if self.signature else None,
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "conveyor_version": self.conveyor_version,
            "python_version": self.python_version,
            "created_at": self.created_at,
            "metadata": dict(self.metadata),
            "files": dict(self.files) if self.files is not None else None,
            "references": [dict(r) for r in self.references],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMeta:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise InvalidInput(
                f"model package format_version {version!r} is not supported (this conveyor reads {FORMAT_VERSION})",
                field="format_version",
                value=version,
                hint="load it with the conveyor version that wrote it (see conveyor_version), or re-save the model",
            )
        sig = data.get("signature")
        files = data.get("files")
        if files is not None and not (
            isinstance(files, Mapping) and all(isinstance(v, int) and v >= 0 for v in files.values())
        ):
            raise InvalidInput("the package's files table is not {name: size}", field="files", value=files,
                               hint="re-save the model with conveyor.models.save")
        return cls(
            flavor=str(data["flavor"]),
            flavor_config=dict(data.get("flavor_config") or {}),
            signature=Signature.from_dict(sig) if sig else None,
            input_example=data.get("input_example"),
            requirements=tuple(data.get("requirements") or ()),
            conveyor_version=str(data.get("conveyor_version", "")),
            python_version=str(data.get("python_version", "")),
            created_at=str(data.get("created_at", "")),
            metadata=dict(data.get("metadata") or {}),
            files={str(k): int(v) for k, v in files.items()} if files is not None else None,
            references=tuple(dict(r) for r in data.get("references") or () if isinstance(r, Mapping)),
        )

    def write(self, folder: Path) -> Path:
        path = folder / META_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def read_meta(folder: str | Path) -> ModelMeta:
    """Read and check ``conveyor-model.json`` of the package in ``folder``.

    Example::

        >>> read_meta("model/").flavor  # doctest: +SKIP
        'sklearn'
    """
    path = Path(folder) / META_FILE
    try:
        info = path.lstat()
    except OSError:
        raise NotFound("model package", str(folder), hint=f"a model package is a folder holding {META_FILE}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{path} is not a regular file (a link, device or folder)", field=META_FILE, value=str(path),
                         hint="a model package holds its description as a plain file")
    if info.st_size > MAX_META_BYTES:
        raise InvalidInput(f"{path} is {info.st_size} bytes, over the {MAX_META_BYTES}-byte limit of a package "
                           "description", field=META_FILE, value=info.st_size, hint="re-save the model")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise TypeError("not a JSON object")
        return ModelMeta.from_dict(data)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise CorruptObject(f"{path} is not a valid model description: {exc}") from None


def pin_requirements(distributions: Iterable[str]) -> tuple[str, ...]:
    """``name==version`` of each installed distribution (plus numpy, pandas); missing ones skipped."""
    from importlib.metadata import PackageNotFoundError, version

    pins: dict[str, str] = {}
    for name in (*distributions, *BASE_REQUIREMENTS):
        try:
            pins[name] = f"{name}=={version(name)}"
        except PackageNotFoundError:
            continue
    return tuple(sorted(pins.values()))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def python_version() -> str:
    return platform.python_version()
