"""The files of a package folder, checked before any flavor reads one.

A package names its files in JSON (``flavor_config.file``, ``input_example``, …) and a
hostile one can name ``/dev/zero``, ``../../.ssh/id_rsa`` or ship a symlink to them.
:class:`PackageFiles` scans the folder once without following links: every entry must be
a regular file or folder inside it, and each file's size must equal the size recorded in
``conveyor-model.json`` when the package was saved — all before a byte is read. Flavors
then ask :meth:`PackageFiles.path` for a name, which accepts only a safe relative path
(``conveyor.blobs.check_relative_path``) naming one of those checked files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from conveyor.blobs import check_relative_path
from conveyor.errors import CorruptObject, NotFound, UnsafePath

#: the most entries a package folder may hold (a model is a handful of files)
MAX_ENTRIES = 10_000


def _refuse(name: str, why: str, field: str) -> UnsafePath:
    return UnsafePath(
        f"model package file {name!r} {why}", field=field, value=name,
        hint="a package holds regular files inside its folder; re-save the model with conveyor.models.save",
    )


class PackageFiles:
    """The checked regular files of a package folder (relative POSIX name → size).

    Example::

        >>> files = PackageFiles(Path("model"), meta.files)   # doctest: +SKIP
        >>> files.path("model.skops", field="flavor_config.file")  # doctest: +SKIP
        PosixPath('model/model.skops')
    """

    def __init__(self, folder: Path, recorded: Mapping[str, int] | None = None) -> None:
        self.root = Path(folder)
        self.sizes: dict[str, int] = {}
        self.recorded = dict(recorded) if recorded else None
        self._scan()
        if self.recorded is not None:
            for name, size in self.recorded.items():
                check_relative_path(name)
                actual = self.sizes.get(name)
                if actual is None:
                    raise CorruptObject(f"model package file {name!r} is missing from {self.root}")
                if actual != int(size):
                    raise CorruptObject(
                        f"model package file {name!r} is {actual} bytes, but the package records {size}: "
                        "it was changed after the model was saved", hint="re-save or re-download the package",
                    )

    def _scan(self) -> None:
        pending = [("", self.root)]
        while pending:
            prefix, folder = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = f"{prefix}{entry.name}"
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if stat.S_ISLNK(mode):
                        raise _refuse(name, "is a symbolic link", "files")
                    if stat.S_ISDIR(mode):
                        pending.append((f"{name}/", Path(entry.path)))
                    elif stat.S_ISREG(mode):
                        self.sizes[name] = entry.stat(follow_symlinks=False).st_size
                    else:
                        raise _refuse(name, "is not a regular file (device, socket or pipe)", "files")
                    if len(self.sizes) > MAX_ENTRIES:
                        raise CorruptObject(f"{self.root} holds more than {MAX_ENTRIES} files: not a model package")

    def path(self, name: object, *, field: str) -> Path:
        """The path of the checked file ``name``; ``UnsafePath``/``NotFound`` naming ``field`` otherwise."""
        if not isinstance(name, str):
            raise _refuse(str(name), "is not a file name", field)
        try:
            check_relative_path(name)
        except UnsafePath as exc:
            raise _refuse(name, f"is not a safe relative path ({exc.message})", field) from None
        if name not in self.sizes:
            raise NotFound("model package file", name, hint=f"{field} names a file the package does not hold")
        if self.recorded is not None and name not in self.recorded:
            raise _refuse(name, "is not among the files the package recorded when it was saved", field)
        return self.root / name
