"""Parsing the references users write: data set versions and lineage nodes.

Data sets: ``data:/name@3``, ``name@3``, ``name`` and ``name@latest`` (the newest version).
Lineage nodes: ``runs:/<id>`` (a run), ``runs:/<id>/<path>`` (an artifact),
``data:/name@3`` (a data set version), ``models:/name/3`` (a model version),
``commit:<sha>``, ``step:<id>``, or any ``<kind>:<id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from conveyor.errors import InvalidInput

__all__ = ["KINDS", "DatasetRef", "Node", "parse_dataset_ref", "parse_node"]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_KIND_RE: Final = re.compile(r"[a-z][a-z_]{0,31}")
#: The node kinds conveyor itself records; others are accepted (plugins may add kinds).
KINDS: Final = ("artifact", "commit", "dataset_version", "model_version", "run", "step")


@dataclass(frozen=True)
class DatasetRef:
    """A data set name and a version number (``None`` = the latest).

    Example::

        >>> str(parse_dataset_ref("data:/iris@2"))
        'data:/iris@2'
    """

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"data:/{self.name}" + ("" if self.version is None else f"@{self.version}")


def check_name(name: str) -> str:
    """A data set name: letters, digits, ``.``, ``_`` and ``-``, up to 128 characters."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"data set name {name!r} is not valid",
            field="name",
            value=name,
            hint="use letters, digits, '.', '_' and '-' (start with a letter or digit), e.g. 'iris-train'",
        )
    return name


def parse_dataset_ref(ref: str | DatasetRef) -> DatasetRef:
    """Parse ``data:/name@3``, ``name@3``, ``name`` or ``name@latest``.

    Example::

        >>> parse_dataset_ref("iris@latest")
        DatasetRef(name='iris', version=None)
    """
    if isinstance(ref, DatasetRef):
        return ref
    if not isinstance(ref, str):
        raise InvalidInput(f"data set reference {ref!r} is not a string", field="ref", value=ref)
    text = ref.removeprefix("data:/").lstrip("/") if ref.startswith("data:") else ref
    name, sep, version = text.partition("@")
    check_name(name)
    if not sep or version == "latest":
        return DatasetRef(name)
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(
            f"data set reference {ref!r} has a bad version {version!r}",
            field="ref",
            value=ref,
            hint=f"write {name}@<number> (from 1) or {name}@latest",
        )
    return DatasetRef(name, int(version))


@dataclass(frozen=True, order=True)
class Node:
    """One end of a lineage edge: a kind and an id (``Node("run", "ab12…")``).

    Example::

        >>> str(Node("dataset_version", "iris@2"))
        'data:/iris@2'
    """

    kind: str
    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND_RE.fullmatch(self.kind):
            raise InvalidInput(
                f"lineage node kind {self.kind!r} is not valid", field="kind", value=self.kind,
                hint=f"use lowercase letters and '_', e.g. one of {', '.join(KINDS)}",
            )
        if not isinstance(self.id, str) or not self.id or len(self.id) > 512:
            raise InvalidInput(
                f"lineage node id {self.id!r} is not valid", field="id", value=self.id,
                hint="a non-empty string of at most 512 characters",
            )

    def __str__(self) -> str:
        if self.kind == "run":
            return f"runs:/{self.id}"
        if self.kind == "artifact":
            return f"runs:/{self.id}"
        if self.kind == "dataset_version":
            return f"data:/{self.id}"
        if self.kind == "model_version":
            return f"models:/{self.id}"
        return f"{self.kind}:{self.id}"


def parse_node(ref: str | Node | tuple[str, str]) -> Node:
    """A lineage node from a URI (see the module docstring), a ``(kind, id)`` pair or a Node.

    ``data:/name`` without a version is refused here: resolving "latest" needs the store
    (``lineage_graph`` does that).

    Example::

        >>> parse_node("runs:/abc123/model")
        Node(kind='artifact', id='abc123/model')
    """
    if isinstance(ref, Node):
        return ref
    if isinstance(ref, tuple):
        return Node(*ref)
    if not isinstance(ref, str) or ":" not in ref:
        raise InvalidInput(
            f"lineage reference {ref!r} is not understood", field="ref", value=ref,
            hint="write runs:/<id>, runs:/<id>/<path>, data:/<name>@<version>, models:/<name>/<version> or <kind>:<id>",
        )
    if ref.startswith("runs:"):
        rest = ref.removeprefix("runs:").lstrip("/").rstrip("/")
        run_id, _, path = rest.partition("/")
        if not run_id.isalnum():
            raise InvalidInput(f"{ref!r} names no valid run id", field="ref", value=ref, hint="runs:/<run_id>[/<path>]")
        return Node("artifact", f"{run_id}/{path}") if path else Node("run", run_id)
    if ref.startswith("data:"):
        parsed = parse_dataset_ref(ref)
        if parsed.version is None:
            raise InvalidInput(
                f"{ref!r} names no version", field="ref", value=ref, hint=f"write data:/{parsed.name}@<version>"
            )
        return Node("dataset_version", f"{parsed.name}@{parsed.version}")
    if ref.startswith("models:"):
        rest = ref.removeprefix("models:").lstrip("/")
        if not rest:
            raise InvalidInput(f"{ref!r} names no model", field="ref", value=ref, hint="models:/<name>/<version>")
        return Node("model_version", rest)
    kind, _, ident = ref.partition(":")
    return Node(kind, ident)
