"""Export the prediction log joined with its feedback to one Parquet or CSV file.

The file is written to a temporary name beside the destination and renamed into place,
so a crash or kill leaves either the old file or the whole new one, never half of it. An
existing destination is replaced only when asked (``force``), and never when it is not a
regular file (a device, a folder) or lies inside a ``.git`` folder.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput, NotFound

FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class Exported:
    """What was written: the file, its format, rows, and how many rows carry a label."""

    path: Path
    format: str
    rows: int
    labelled: int
    versions: tuple[str, ...]


def export_prediction_log(
    model: str,
    out: str | os.PathLike[str],
    *,
    fmt: str = "parquet",
    version: str | None = None,
    since: Any = None,
    until: Any = None,
    force: bool = False,
    tracker: Any = None,
) -> Exported:
    """Write every logged prediction of ``model`` with its feedback label (empty where none
    arrived) to ``out`` as Parquet or CSV.

    Example::

        >>> export_prediction_log("iris", "iris-log.parquet")          # doctest: +SKIP
        Exported(path=PosixPath('iris-log.parquet'), format='parquet', rows=1200, labelled=300, versions=('3',))
    """
    from conveyor.serving._reader import read_prediction_log

    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}", field="format", value=fmt, hint="use parquet or csv")
    path = _destination(Path(out), force)
    frame = read_prediction_log(model, version, since, until, with_feedback=True, tracker=tracker)
    if not len(frame):
        raise NotFound("prediction log", model if version is None else f"{model} version {version}",
                       hint="serve the model (conveyor serve) and send requests; the log is written every "
                            "log_flush_s seconds")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            frame.to_parquet(tmp, index=False, compression="zstd")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    labelled = int(frame["label"].notna().sum()) if "label" in frame else 0
    return Exported(path, fmt, len(frame), labelled, tuple(sorted({str(v) for v in frame["version"]})))


def _destination(path: Path, force: bool) -> Path:
    if any(part == ".git" for part in path.resolve().parts):
        raise InvalidInput(f"{path} is inside a .git folder", field="out", value=str(path),
                           hint="write the export elsewhere")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InvalidInput(f"{path} exists and is not a regular file", field="out", value=str(path),
                           hint="name a new file")
    if path.exists() and not force:
        raise InvalidInput(f"{path} exists", field="out", value=str(path), hint="name a new file, or add --force")
    if not path.parent.is_dir():
        raise InvalidInput(f"the folder {path.parent} does not exist", field="out", value=str(path),
                           hint="create it first")
    return path
