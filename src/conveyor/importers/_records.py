"""What every MLflow source reader yields: plain records (:class:`Exp`, :class:`SourceRun`,
:class:`Version`, :class:`RegisteredModel`, :class:`LoggedModel`) and :class:`Tree` objects
for artifact folders (local ones here; a tracking server's in ``_rest``), plus where a
source's local artifact URIs point (never outside their root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from conveyor.blobs import check_relative_path
from conveyor.errors import UnsafePath


#: MLflow's numeric run statuses (file store meta.yaml) → names
RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


@dataclass
class Exp:
    id: str
    name: str
    deleted: bool
    tags: dict[str, str]
    created: int | None
    artifact_location: str


@dataclass
class SourceRun:
    id: str
    experiment_id: str
    name: str
    status: str
    start: int | None
    end: int | None
    user: str
    deleted: bool
    params: dict[str, str]
    tags: dict[str, str]
    artifact_uri: str
    metric_keys: list[str] = field(default_factory=list)  # a server's run lists its metrics' keys


@dataclass
class Version:
    model: str
    version: int
    source: str
    run_id: str
    status: str
    stage: str
    description: str
    user: str
    created: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RegisteredModel:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    versions: list[Version]


@dataclass
class LoggedModel:
    """An MLflow 3 logged model (``models:/m-…``): its files live outside the run's artifacts."""

    id: str
    name: str
    run_id: str
    experiment_id: str
    artifact_location: str


@dataclass
class Refused:
    """An artifact entry the importer would not copy, and why."""

    path: str
    reason: str


class Tree:
    """An artifact folder of the source: list its files (relative POSIX paths and sizes, each
    checked), and fetch one as a local file."""

    refused: list[Refused]

    def files(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    @contextmanager
    def fetch(self, rel: str) -> Iterator[Path]:
        raise NotImplementedError
        yield Path()  # pragma: no cover


def checked(rel: str, refused: list[Refused]) -> str | None:
    """``rel`` when it is a plain relative path; otherwise it is recorded as refused."""
    try:
        return check_relative_path(rel)
    except UnsafePath as exc:
        refused.append(Refused(rel, exc.message))
        return None


class LocalTree(Tree):
    """Files under a local folder; symlinks are refused (never followed), so nothing outside
    the folder is read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused = []

    def files(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        if not self.root.is_dir():
            return out
        if self.root.is_symlink():
            self.refused.append(Refused(str(self.root), "the artifact folder is a symbolic link; not followed"))
            return out
        for folder, dirs, names in os.walk(self.root, followlinks=False):
            base = Path(folder)
            for d in list(dirs):
                if (base / d).is_symlink():
                    dirs.remove(d)
                    rel = (base / d).relative_to(self.root).as_posix()
                    self.refused.append(Refused(rel, "a symbolic link; never followed (it could point outside the store)"))
            for name in names:
                path = base / name
                rel = path.relative_to(self.root).as_posix()
                if path.is_symlink():
                    self.refused.append(Refused(rel, "a symbolic link; never followed (it could point outside the store)"))
                    continue
                if not path.is_file():
                    self.refused.append(Refused(rel, "not a regular file"))
                    continue
                good = checked(rel, self.refused)
                if good is not None:
                    out.append((good, path.stat().st_size))
        return sorted(out)

    @contextmanager
    def fetch(self, rel: str) -> Iterator[Path]:
        yield self.root / rel


class MissingTree(Tree):
    """An artifact location that this importer cannot read (another scheme, a missing folder)."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        self.refused = []

    def files(self) -> list[tuple[str, int]]:
        return []


def int_or_none(value: Any) -> int | None:
    """A number field of a source that may be empty."""
    if value is None or value == "":
        return None
    return int(value)


# -- local artifact locations --------------------------------------------------------------------
def local_path(uri: str, bases: list[Path], proxied_root: Path | None) -> Path | str:
    """The local folder of an artifact URI, or the reason it has none."""
    if not uri:
        return "the source records no artifact location"
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        if proxied_root is None:
            return (f"{uri} is served by an MLflow tracking server's artifact proxy; pass --artifacts-dir "
                    "with that server's --artifacts-destination folder, or import from the server's URL")
        rel = unquote(parsed.path).lstrip("/")
        return _inside(proxied_root, rel, uri)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = Path(uri)
    else:
        return (f"{uri} is in {parsed.scheme}:// storage, which this importer does not read; import from "
                "the MLflow tracking server's URL (it serves those artifacts), or copy them to a folder first")
    if ".." in path.parts:
        return f"{uri} has a '..' segment; refused (an artifact location must not climb out of its folder)"
    if path.is_absolute():
        return path
    for base in bases:
        if (base / path).exists():
            return base / path
    return bases[0] / path


def _inside(root: Path, rel: str, uri: str) -> Path | str:
    if rel in ("", "."):
        return root
    try:
        check_relative_path(rel)
    except UnsafePath as exc:
        return f"{uri}: {exc.message}"
    return root / rel


def tree_for(uri: str, bases: list[Path], proxied_root: Path | None) -> Tree:
    where = local_path(uri, bases, proxied_root)
    if isinstance(where, str):
        return MissingTree(uri, where)
    if not where.exists():
        return MissingTree(uri, f"{uri}: the folder {where} does not exist (nothing was logged, or it moved)")
    return LocalTree(where)
