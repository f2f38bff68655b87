"""The remote mode's wire format: the server's JSON as entities, points as JSON, safe path
parts (run ids, quoted artifact paths) and a ``read(n)`` view of a streamed answer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from conveyor.entities import Artifact, Experiment, Run, RunStatus
from conveyor.errors import InvalidInput
from conveyor.store import Point


def _float(value: Any) -> float:
    return float(value)  # "NaN", "Infinity" and "-Infinity" parse as such


_RUN_FIELDS = frozenset(Run.__dataclass_fields__)


def _run(data: Mapping[str, Any]) -> Run:
    fields = {k: v for k, v in data.items() if k in _RUN_FIELDS}  # a newer server may say more
    fields["status"] = RunStatus(fields["status"])
    fields["metrics"] = {k: _float(v) for k, v in fields["metrics"].items()}
    return Run(**fields)


def _experiment(data: Mapping[str, Any]) -> Experiment:
    return Experiment(data["id"], data["name"], data["description"], data["archived"], data["created_at"],
                      dict(data["tags"]))


def _artifact(data: Mapping[str, Any]) -> Artifact:
    return Artifact(data["run_id"], data["path"], data["digest"], data["size"], data["media_type"], data["is_dir"])


def _point_json(point: Point) -> dict[str, Any]:
    _, key, value, step, stamp = point
    shown: Any = value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if shown == "nan":
        shown = "NaN"
    elif shown == "inf":
        shown = "Infinity"
    elif shown == "-inf":
        shown = "-Infinity"
    return {"key": key, "value": shown, "step": step, "timestamp": stamp}


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _param(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _id(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id.isalnum() or not run_id.isascii() or len(run_id) > 32:
        raise InvalidInput(f"run id {run_id!r} is not valid", field="run_id", value=run_id,
                           hint="run ids are 32 hexadecimal characters")
    return run_id


class _Reader:
    """A ``read(n)`` stream over an iterator of byte chunks (what ``copy_to`` reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._left) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._left += chunk
        if size < 0:
            out, self._left = self._left, b""
        else:
            out, self._left = self._left[:size], self._left[size:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
