"""The remote mode's artifacts: files and folders uploaded to the server (big files in
parts, see ``_uploads``), listed, read and downloaded (checked against their digests).

:class:`RemoteArtifacts` holds ``RemoteTracker``'s artifact methods; it needs the tracker's
``http``, ``server`` settings, spool folder and ``_require_run``.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from conveyor import errors as _errors
from conveyor.blobs import Digest, Manifest
from conveyor.blobs._safepath import folder_files
from conveyor.entities import Artifact
from conveyor.errors import InvalidInput, NotFound
from conveyor.settings import ServerSettings
from conveyor.tracking import _uploads
from conveyor.tracking._client import Http, ServerUnreachable, _error
from conveyor.tracking._values import artifact_path
from conveyor.tracking._wire import _artifact, _id, _quote, _Reader

CHUNK = 1024 * 1024


class RemoteArtifacts:
    """``RemoteTracker``'s artifact methods (a mixin in front of ``Tracker``'s)."""

    http: Http
    server: ServerSettings
    _spool: Any

    if TYPE_CHECKING:
        def _require_run(self, run_id: str) -> None: ...

    def _log_file(self, run_id: str, path: str, source: Path, media: str) -> Artifact:
        if source.stat().st_size > self.server.multipart_threshold:
            return _artifact(self._upload(run_id, path, source, media))
        return self._put(run_id, path, lambda: open(source, "rb"), media)  # noqa: SIM115 - closed by Http

    def _upload(self, run_id: str, path: str | None, source: Path, media: str) -> dict[str, Any]:
        """A big file in parts, or straight to S3 (resumable: see ``_uploads``)."""
        return _uploads.upload_file(self.http, _id(run_id), path, source, media,
                                    part_size=self.server.multipart_part_size,
                                    state_dir=getattr(self._spool, "folder", None))

    def _put(self, run_id: str, path: str, body: Callable[[], Any], media: str) -> Artifact:
        data = self.http.json("PUT", f"/runs/{_id(run_id)}/artifacts/{_quote(path)}", content=body,
                              headers={"Content-Type": media})
        return _artifact(data)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path_: str | None = None) -> Artifact:
        """A folder: each file uploaded as a blob, then recorded as one manifest."""
        source = Path(local_dir)
        if not source.is_dir():
            raise NotFound("folder", str(source))
        path = artifact_path(artifact_path_ or source.name)
        self._require_run(run_id)
        entries = []
        for rel, full in sorted(folder_files(source)):
            if full.stat().st_size > self.server.multipart_threshold:
                blob = self._upload(run_id, None, full, "application/octet-stream")
            else:
                blob = self.http.json("PUT", f"/runs/{_id(run_id)}/blobs",
                                      content=lambda f=full: open(f, "rb"))  # noqa: SIM115 - closed by Http
            entries.append({"path": rel, "digest": blob["digest"], "size": blob["size"]})
        data = self.http.json("POST", f"/runs/{_id(run_id)}/folders/{_quote(path)}", json={"entries": entries})
        return _artifact(data)

    def log_bytes(self, run_id: str, data: bytes, path: str, media_type: str | None = None) -> Artifact:
        checked = artifact_path(path)
        self._require_run(run_id)
        media = media_type or mimetypes.guess_type(checked)[0] or "application/octet-stream"
        return self._put(run_id, checked, lambda: data, media)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        found = self.http.json("GET", f"/runs/{_id(run_id)}/artifacts", params={"prefix": prefix})
        return [_artifact(a) for a in found]

    def artifact_files(self, run_id: str) -> list[tuple[str, int, str]]:
        return [(f["path"], f["size"], f["digest"]) for f in self.http.json("GET", f"/runs/{_id(run_id)}/artifact-files")]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        checked = artifact_path(path)
        for artifact in self.list_artifacts(run_id):
            if artifact.path == checked:
                return artifact
        for full, size, digest in self.artifact_files(run_id):
            if full == checked:
                media = mimetypes.guess_type(full)[0] or "application/octet-stream"
                return Artifact(run_id, checked, digest, size, media)
        raise NotFound("artifact", checked)

    def download_artifact(self, run_id: str, path: str, dest: str | Path | None = None, *, force: bool = False) -> Path:
        """Like embedded mode: a file or a folder, written atomically, nothing overwritten
        unless ``force``, nothing written into ``.git`` or onto a device."""
        from conveyor.blobs._checkout import DestinationExists, check_destination

        artifact = self.get_artifact(run_id, path)
        name = Path(artifact.path).name
        target = Path(name) if dest is None else Path(dest)
        if not artifact.is_dir:
            if target.is_dir() and not target.is_symlink():
                target = target / name
            if check_destination(target, Digest.parse(artifact.digest), artifact.size, force=force):
                self._fetch(run_id, artifact.path, Digest.parse(artifact.digest), target, force)
            return target
        manifest = Manifest.from_bytes(self._read(run_id, artifact.path))
        wanted, clashing = [], []
        for entry in manifest.entries:
            file = target / entry.path
            try:
                if check_destination(file, entry.digest, entry.size, force=force):
                    wanted.append((entry, file))
            except DestinationExists:
                clashing.append(file)
        if clashing:
            raise DestinationExists(clashing)
        for entry, file in wanted:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._fetch(run_id, f"{artifact.path}/{entry.path}", entry.digest, file, force)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def _fetch(self, run_id: str, path: str, digest: Digest, target: Path, force: bool) -> None:
        from conveyor.blobs._materialize import copy_to

        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _uploads.download(self.http, f"/runs/{_id(run_id)}/artifacts/{_quote(path)}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                actual = copy_to(_Reader(response.iter_bytes(CHUNK)), target, digest, hashing=True,  # type: ignore[arg-type]
                                 force=force)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"downloading {path!r} from {self.http.url} failed: {exc}") from exc
        if actual is not None and actual != digest:
            raise _errors.CorruptObject(f"{path!r} arrived as {actual}, not {digest}",
                                        hint="download it again")

    def _read(self, run_id: str, path: str) -> bytes:
        return _uploads.read_all(self.http.request("GET", f"/runs/{_id(run_id)}/artifacts/{_quote(path)}"))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        artifact = self.get_artifact(run_id, path)
        if artifact.is_dir:
            raise InvalidInput(f"artifact {path!r} is a folder", field="path", value=path, hint="download it")
        return self._read(run_id, artifact.path)
