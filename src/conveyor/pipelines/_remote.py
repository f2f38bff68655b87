"""Pipelines in remote mode (``[server] url``): steps run here, records and objects go
through the server.

The coordinator writes nothing to the stores itself: opening a step's run, the cache lookup
("has an execution with this key finished, and are its outputs intact?"), recording a cache
hit, a step's end and the pipeline's candidate are ``/api/v1/pipelines`` requests that run
the same ``_record`` code on the server (each write under an ``Idempotency-Key``, so a retry
after a lost answer takes effect once). Step outputs, logs and what a step logs travel as
content-addressed objects through ``/api/v1/pipelines/runs/{run}/blobs``, the same
``BlobStore`` code over :class:`conveyor.blobs._http.HttpBackend`, scoped to the pipeline run.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO

from conveyor.blobs._http import HttpBackend

#: Objects up to this size that this process uploaded are kept in memory, so a worker can
#: read back a manifest it just wrote (a model package it logged) before the step's run records it.
_KEEP_BYTES = 1024 * 1024
_KEEP_COUNT = 256


def is_remote(tracker: Any) -> bool:
    from conveyor.tracking._remote import RemoteTracker

    return isinstance(tracker, RemoteTracker)


class RunBlobs(HttpBackend):
    """The objects of pipeline run ``run_id`` through ``/api/v1/pipelines/runs/{run_id}/blobs``."""

    def __init__(self, http: Any, run_id: str, *, concurrency: int = 8) -> None:
        super().__init__(http, run_id, concurrency=concurrency)
        self._base = f"/pipelines/runs/{run_id}/blobs"
        self.url = f"{http.url}/api/v1{self._base}"
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def put_stream(self, stream: BinaryIO) -> Any:
        data = stream.read(_KEEP_BYTES + 1)
        if len(data) > _KEEP_BYTES:
            import io

            rest = _Chain(io.BytesIO(data), stream)
            return super().put_stream(rest)  # type: ignore[arg-type]
        import io

        digest, size = super().put_stream(io.BytesIO(data))
        with self._lock:
            self._kept[str(digest)] = data
            while len(self._kept) > _KEEP_COUNT:
                self._kept.popitem(last=False)
        return digest, size

    def _own(self, digest: Any) -> bytes | None:
        with self._lock:
            return self._kept.get(str(digest))

    def read_all(self, digest: Any) -> bytes:
        kept = self._own(digest)
        return kept if kept is not None else super().read_all(digest)

    def open_read(self, digest: Any) -> BinaryIO:
        import io

        kept = self._own(digest)
        return io.BytesIO(kept) if kept is not None else super().open_read(digest)

    def size(self, digest: Any) -> int:
        kept = self._own(digest)
        return len(kept) if kept is not None else super().size(digest)


class _Chain:
    """``read`` over a buffer, then the rest of a stream."""

    def __init__(self, first: Any, rest: Any) -> None:
        self._parts = [first, rest]

    def read(self, size: int = -1) -> bytes:
        while self._parts:
            data = self._parts[0].read(size)
            if data:
                return bytes(data)
            self._parts.pop(0)
        return b""

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def run_blobs(http: Any, run_id: str) -> Any:
    from conveyor.blobs import BlobStore

    return BlobStore(RunBlobs(http, run_id))


def blobs_of(tracker: Any, run_id: str) -> Any:
    """The artifact store as the pipeline run ``run_id`` sees it: the tracker's own when
    embedded, the run's objects through the server in remote mode."""
    return run_blobs(tracker.http, run_id) if is_remote(tracker) else tracker.blobs


#: shorter tokens are not masked (replacing every "ab" in a log would hide the log, not a secret)
MASK_MIN = 8
MASK = "***"


def mask(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (the server token) replaced by ``***``."""
    if not secret or len(secret) < MASK_MIN or not text:
        return text
    return text.replace(secret, MASK)


def mask_file(path: Any, secret: str | None, chunk: int = 1 << 20) -> None:
    """Replace ``secret`` by ``***`` in the file at ``path``, streaming (a step's log may be
    large), through a temporary file moved into place only when the secret was there."""
    import os
    from pathlib import Path

    if not secret or len(secret) < MASK_MIN:
        return
    path, needle, keep = Path(path), secret.encode(), len(secret.encode()) - 1
    tmp = path.with_name(path.name + ".masked")
    found = False
    with open(path, "rb") as source, open(tmp, "wb") as target:
        tail = b""
        while True:
            data = source.read(chunk)
            buffer = tail + data
            if needle in buffer:
                found = True
                buffer = buffer.replace(needle, MASK.encode())
            if not data:
                target.write(buffer)
                break
            # keep the last len-1 bytes back: the secret may straddle two chunks
            cut = max(0, len(buffer) - keep)
            target.write(buffer[:cut])
            tail = buffer[cut:]
    if found:
        os.replace(tmp, path)
    else:
        tmp.unlink()


class Coordinator:
    """The coordinator's writes as ``/api/v1/pipelines`` requests (see the module docstring)."""

    def __init__(self, tracker: Any) -> None:
        self.http = tracker.http

    def _write(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.json(method, f"/pipelines/runs{path}", json=dict(body),
                                                headers={"Idempotency-Key": uuid.uuid4().hex})
        return answer

    def create_run(self, run_id: str, pipeline: str, executor: str, dag: Mapping[str, Any]) -> None:
        self._write("POST", "", {"run_id": run_id, "pipeline": pipeline, "executor": executor, "dag": dict(dag)})

    def lookup(self, run_id: str, step: str, key: str, outputs: list[str]) -> dict[str, Any] | None:
        """The newest finished execution with ``key`` and intact ``outputs``, or None."""
        found = self.http.json("POST", f"/pipelines/runs/{run_id}/cache-lookup",
                               json={"step": step, "cache_key": key, "outputs": outputs})
        return found if found.get("run_id") else None

    def open_step(self, run_id: str, body: Mapping[str, Any]) -> str:
        return str(self._write("POST", f"/{run_id}/steps", body)["run_id"])

    def close_step(self, run_id: str, step_run: str, body: Mapping[str, Any]) -> None:
        self._write("PATCH", f"/{run_id}/steps/{step_run}", body)

    def dataset_input(self, ref: str) -> tuple[str, dict[str, str]]:
        """``(data:/name@N, output)`` pinned on the server (the output's objects are there)."""
        found = self.http.json("POST", "/pipelines/dataset-inputs", json={"ref": ref})
        return str(found["ref"]), dict(found["output"])

    def contract(self, run_id: str, body: Mapping[str, Any]) -> None:
        self._write("POST", f"/{run_id}/contract", body)


__all__ = ["Coordinator", "RunBlobs", "blobs_of", "is_remote", "mask", "mask_file", "run_blobs"]
