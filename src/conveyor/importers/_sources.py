"""Readers of an MLflow tracking source: a tracking server (its REST API, over httpx), a
file store (``mlruns/``: YAML and text files) or a SQLite store (its tables, read-only,
with SQLAlchemy). Nothing here imports ``mlflow`` and nothing is ever unpickled: model
folders are files to copy.

Every reader yields the same plain records (:class:`Exp`, :class:`SourceRun`,
:class:`Version`, :class:`LoggedModel`) and :class:`Tree` objects for artifact folders, so
the copy logic in ``_mlflow.py`` does not know where they came from.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from conveyor.blobs import check_relative_path
from conveyor.errors import ConveyorError, InvalidInput, ServiceUnavailable, UnsafePath

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


# -- the file store -------------------------------------------------------------------------------
def _yaml(path: Path) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]

    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return data if isinstance(data, dict) else {}


def _key_files(folder: Path) -> dict[str, Path]:
    """``tags/``, ``params/``, ``metrics/``: one file per key, ``/`` in a key is a sub-folder."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(folder).as_posix()] = path
    return out


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


class FileSource:
    """MLflow's file store: ``mlruns/<experiment id>/meta.yaml``, ``…/<run id>/{meta.yaml,
    params,metrics,tags,artifacts}``, ``mlruns/.trash`` and ``mlruns/models``."""

    kind = "file store"

    def __init__(self, root: Path, proxied_root: Path | None) -> None:
        self.root = root
        self.identity = root.resolve().as_uri()
        self.proxied_root = proxied_root
        self.bases = [root.parent, Path.cwd()]
        self._exp_dirs: dict[str, Path] = {}
        if not any((p / "meta.yaml").is_file() for p in self._candidates()) and not (root / "models").is_dir():
            raise InvalidInput(
                f"{root} is not an MLflow file store: no <experiment id>/meta.yaml in it",
                field="--from", value=str(root),
                hint="point --from at the mlruns folder MLflow wrote (the one holding 0/meta.yaml), "
                     "at sqlite:///path/to/mlflow.db, or at the tracking server's http(s):// URL",
            )

    def _candidates(self) -> Iterator[Path]:
        for parent in (self.root, self.root / ".trash"):
            if parent.is_dir():
                for child in sorted(parent.iterdir()):
                    if child.is_dir() and not child.is_symlink() and child.name not in ("models", ".trash"):
                        yield child

    def close(self) -> None:
        pass

    def experiments(self) -> list[Exp]:
        out = []
        for folder in self._candidates():
            meta_file = folder / "meta.yaml"
            if not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            exp_id = str(meta.get("experiment_id", folder.name))
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(folder / "tags").items()}
            self._exp_dirs[exp_id] = folder
            out.append(Exp(exp_id, str(meta.get("name", exp_id)),
                           meta.get("lifecycle_stage") == "deleted" or folder.parent.name == ".trash",
                           tags, _int(meta.get("creation_time")), str(meta.get("artifact_location") or "")))
        return out

    def runs(self, exp: Exp) -> list[SourceRun]:
        folder = self._exp_dirs[exp.id]
        out = []
        for child in sorted(folder.iterdir()):
            meta_file = child / "meta.yaml"
            if child.name in ("tags", "models", "datasets", "traces") or not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            status = meta.get("status")
            params = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "params").items()}
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "tags").items()}
            out.append(SourceRun(
                id=str(meta.get("run_id") or meta.get("run_uuid") or child.name), experiment_id=exp.id,
                name=str(meta.get("run_name") or tags.get("mlflow.runName") or ""),
                status=RUN_STATUS.get(status, str(status)) if isinstance(status, int) else str(status or "FINISHED"),
                start=_int(meta.get("start_time")), end=_int(meta.get("end_time")),
                user=str(meta.get("user_id") or ""), deleted=meta.get("lifecycle_stage") == "deleted",
                params=params, tags=tags, artifact_uri=str(meta.get("artifact_uri") or ""),
            ))
        return out

    def _run_dir(self, run: SourceRun) -> Path:
        return self._exp_dirs[run.experiment_id] / run.id

    def metrics(self, run: SourceRun) -> list[tuple[str, float, int, int]]:
        out = []
        for key, path in _key_files(self._run_dir(run) / "metrics").items():
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                stamp, value = int(parts[0]), float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
                out.append((key, value, step, stamp))
        return out

    def artifacts(self, run: SourceRun) -> Tree:
        return tree_for(run.artifact_uri, self.bases, self.proxied_root)

    def logged_models(self, exp: Exp) -> list[LoggedModel]:
        folder = self._exp_dirs[exp.id] / "models"
        out = []
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                meta_file = child / "meta.yaml"
                if not meta_file.is_file():
                    continue
                meta = _yaml(meta_file)
                out.append(LoggedModel(str(meta.get("model_id") or child.name), str(meta.get("name") or child.name),
                                       str(meta.get("source_run_id") or ""), exp.id,
                                       str(meta.get("artifact_location") or (child / "artifacts").as_uri())))
        return out

    def model_tree(self, model: LoggedModel) -> Tree:
        return tree_for(model.artifact_location, self.bases, self.proxied_root)

    def registered_models(self) -> list[RegisteredModel]:
        folder = self.root / "models"
        out = []
        if not folder.is_dir():
            return out
        for child in sorted(folder.iterdir()):
            meta_file = child / "meta.yaml"
            if not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            name = str(meta.get("name") or child.name)
            aliases = {k: int(p.read_text(encoding="utf-8").strip()) for k, p in _key_files(child / "aliases").items()}
            versions = []
            for vdir in sorted(child.glob("version-*")):
                if not (vdir / "meta.yaml").is_file():
                    continue
                v = _yaml(vdir / "meta.yaml")
                versions.append(Version(
                    model=name, version=int(v.get("version") or vdir.name.split("-", 1)[1]),
                    source=str(v.get("source") or ""), run_id=str(v.get("run_id") or ""),
                    status=str(v.get("status") or "READY"), stage=str(v.get("current_stage") or "None"),
                    description=str(v.get("description") or ""), user=str(v.get("user_id") or ""),
                    created=_int(v.get("creation_timestamp")),
                    tags={k: p.read_text(encoding="utf-8") for k, p in _key_files(vdir / "tags").items()},
                ))
            versions.sort(key=lambda x: x.version)
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "tags").items()}
            out.append(RegisteredModel(name, str(meta.get("description") or ""), tags, aliases, versions))
        return out


# -- the SQLite store -----------------------------------------------------------------------------
class SqliteSource:
    """MLflow's SQLAlchemy store on SQLite, opened read-only (``mode=ro``): never written."""

    kind = "SQLite store"

    def __init__(self, path: Path, proxied_root: Path | None, shown: str | None = None) -> None:
        from sqlalchemy import create_engine, inspect

        shown = shown or str(path)

        self.path = path
        self.identity = "sqlite:///" + str(path.resolve())
        self.proxied_root = proxied_root
        self.bases = [path.parent, Path.cwd()]
        self.engine = create_engine(f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true")
        try:
            self.tables = set(inspect(self.engine).get_table_names())
        except Exception as exc:  # noqa: BLE001 - sqlite3 says "file is not a database" and the like
            self.engine.dispose()
            raise InvalidInput(f"{shown} cannot be read as a SQLite database: {str(exc).splitlines()[0]}",
                               field="--from", value=shown,
                               hint="point --from at the mlflow.db file MLflow wrote") from None
        if not {"experiments", "runs", "metrics", "params", "tags"} <= self.tables:
            self.engine.dispose()
            raise InvalidInput(
                f"{shown} is a SQLite database but not an MLflow tracking store (no experiments/runs/metrics tables)",
                field="--from", value=shown, hint="point --from at the database given to mlflow's --backend-store-uri",
            )

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())

    def experiments(self) -> list[Exp]:
        tags: dict[str, dict[str, str]] = {}
        if "experiment_tags" in self.tables:
            for r in self._rows("SELECT experiment_id, key, value FROM experiment_tags"):
                tags.setdefault(str(r["experiment_id"]), {})[r["key"]] = r["value"] or ""
        return [Exp(str(r["experiment_id"]), r["name"], r["lifecycle_stage"] == "deleted",
                    tags.get(str(r["experiment_id"]), {}), _int(r.get("creation_time")),
                    r["artifact_location"] or "")
                for r in self._rows("SELECT * FROM experiments ORDER BY experiment_id")]

    def runs(self, exp: Exp) -> list[SourceRun]:
        rows = self._rows("SELECT * FROM runs WHERE experiment_id = :e ORDER BY start_time, run_uuid", e=int(exp.id))
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        for r in self._rows("SELECT p.run_uuid, p.key, p.value FROM params p JOIN runs r ON r.run_uuid = p.run_uuid "
                            "WHERE r.experiment_id = :e", e=int(exp.id)):
            params.setdefault(r["run_uuid"], {})[r["key"]] = r["value"] or ""
        for r in self._rows("SELECT t.run_uuid, t.key, t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
                            "WHERE r.experiment_id = :e", e=int(exp.id)):
            tags.setdefault(r["run_uuid"], {})[r["key"]] = r["value"] or ""
        return [SourceRun(
            id=r["run_uuid"], experiment_id=exp.id, name=r.get("name") or "", status=r["status"] or "FINISHED",
            start=_int(r["start_time"]), end=_int(r["end_time"]), user=r.get("user_id") or "",
            deleted=r["lifecycle_stage"] == "deleted", params=params.get(r["run_uuid"], {}),
            tags=tags.get(r["run_uuid"], {}), artifact_uri=r.get("artifact_uri") or "",
        ) for r in rows]

    def metrics(self, run: SourceRun) -> list[tuple[str, float, int, int]]:
        rows = self._rows("SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :r", r=run.id)
        return [(r["key"], math.nan if r["is_nan"] else float(r["value"]), int(r["step"] or 0), int(r["timestamp"]))
                for r in rows]

    def artifacts(self, run: SourceRun) -> Tree:
        return tree_for(run.artifact_uri, self.bases, self.proxied_root)

    def logged_models(self, exp: Exp) -> list[LoggedModel]:
        if "logged_models" not in self.tables:
            return []
        return [LoggedModel(r["model_id"], r["name"] or r["model_id"], r.get("source_run_id") or "", exp.id,
                            r["artifact_location"] or "")
                for r in self._rows("SELECT * FROM logged_models WHERE experiment_id = :e", e=int(exp.id))]

    def model_tree(self, model: LoggedModel) -> Tree:
        return tree_for(model.artifact_location, self.bases, self.proxied_root)

    def registered_models(self) -> list[RegisteredModel]:
        if "registered_models" not in self.tables:
            return []
        versions: dict[str, list[Version]] = {}
        vtags: dict[tuple[str, int], dict[str, str]] = {}
        if "model_version_tags" in self.tables:
            for r in self._rows("SELECT name, version, key, value FROM model_version_tags"):
                vtags.setdefault((r["name"], int(r["version"])), {})[r["key"]] = r["value"] or ""
        for r in self._rows("SELECT * FROM model_versions ORDER BY name, version"):
            versions.setdefault(r["name"], []).append(Version(
                model=r["name"], version=int(r["version"]), source=r["source"] or "", run_id=r["run_id"] or "",
                status=r["status"] or "READY", stage=r["current_stage"] or "None",
                description=r["description"] or "", user=r["user_id"] or "", created=_int(r["creation_time"]),
                tags=vtags.get((r["name"], int(r["version"])), {}),
            ))
        aliases: dict[str, dict[str, int]] = {}
        if "registered_model_aliases" in self.tables:
            for r in self._rows("SELECT name, alias, version FROM registered_model_aliases"):
                aliases.setdefault(r["name"], {})[r["alias"]] = int(r["version"])
        mtags: dict[str, dict[str, str]] = {}
        if "registered_model_tags" in self.tables:
            for r in self._rows("SELECT name, key, value FROM registered_model_tags"):
                mtags.setdefault(r["name"], {})[r["key"]] = r["value"] or ""
        return [RegisteredModel(r["name"], r["description"] or "", mtags.get(r["name"], {}),
                                aliases.get(r["name"], {}), versions.get(r["name"], []))
                for r in self._rows("SELECT * FROM registered_models ORDER BY name")]


# -- a tracking server ----------------------------------------------------------------------------
class RestTree(Tree):
    """Artifacts behind a tracking server: the proxied artifact API (``mlflow-artifacts:``
    locations) or the run's own listing and ``/get-artifact``. Every listed name is checked:
    a server answering ``../x`` gets it refused, not followed."""

    def __init__(self, source: RestSource, *, proxied: str | None = None, run_id: str | None = None) -> None:
        self.source = source
        self.proxied = proxied
        self.run_id = run_id
        self.refused = []

    def files(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        self._walk("", out, depth=0)
        return sorted(out)

    def _list(self, rel: str) -> list[dict[str, Any]]:
        if self.proxied is not None:
            path = f"{self.proxied}/{rel}".strip("/")
            data = self.source.get("/api/2.0/mlflow-artifacts/artifacts", {"path": path})
        else:
            query = {"run_id": self.run_id, "run_uuid": self.run_id}
            if rel:
                query["path"] = rel
            data = self.source.get("/api/2.0/mlflow/artifacts/list", query)
        files = data.get("files") or []
        return [f for f in files if isinstance(f, dict)]

    def _walk(self, rel: str, out: list[tuple[str, int]], depth: int) -> None:
        if depth > 64:
            self.refused.append(Refused(rel, "folders nested more than 64 deep; not followed"))
            return
        for entry in self._list(rel):
            name = str(entry.get("path") or "")
            if self.proxied is not None:
                full = f"{rel}/{name}" if rel else name
            else:
                full = name  # the run listing answers paths from the artifact root
                if rel and not full.startswith(rel + "/"):
                    self.refused.append(Refused(full, f"listed under {rel!r} but outside it"))
                    continue
            good = checked(full, self.refused)
            if good is None:
                continue
            if entry.get("is_dir"):
                self._walk(good, out, depth + 1)
            else:
                out.append((good, int(entry.get("file_size") or 0)))

    @contextmanager
    def fetch(self, rel: str) -> Iterator[Path]:
        if self.proxied is not None:
            url, params = f"/api/2.0/mlflow-artifacts/artifacts/{quote(self.proxied + '/' + rel)}", None
        else:
            url, params = "/get-artifact", {"path": rel, "run_uuid": self.run_id, "run_id": self.run_id}
        folder = tempfile.mkdtemp(prefix="conveyor-import-")
        try:
            target = Path(folder) / "file"
            with self.source.client.stream("GET", url, params=params) as response:
                self.source.check(response, url)
                with target.open("wb") as handle:
                    for chunk in response.iter_bytes(1024 * 1024):
                        handle.write(chunk)
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class RestSource:
    """A tracking server, through the REST API its own client uses. The mlflow client's
    auth variables work: ``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME``
    and ``MLFLOW_TRACKING_PASSWORD`` (basic)."""

    kind = "tracking server"

    def __init__(self, url: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        import httpx

        env = dict(os.environ if env is None else env)
        self.url = url.rstrip("/")
        self.identity = self.url
        headers = {"User-Agent": "conveyor-import"}
        auth = None
        if env.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        elif env.get("MLFLOW_TRACKING_USERNAME"):
            auth = httpx.BasicAuth(env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
        verify: bool | str = True
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            verify = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        self.client = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout, verify=verify)
        self._logged: dict[str, LoggedModel] = {}
        self.get("/api/2.0/mlflow/experiments/search", {"max_results": 1})  # reachable and speaks MLflow

    def close(self) -> None:
        self.client.close()

    def check(self, response: Any, path: str) -> None:
        if response.status_code in (401, 403):
            raise InvalidInput(
                f"{self.url} refused the request ({response.status_code}) for {path}",
                field="--from", value=self.url,
                hint="set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                     "to credentials that may read every experiment and model",
            )
        if response.status_code >= 400:
            if hasattr(response, "read"):
                response.read()
            raise ServiceUnavailable(
                f"{self.url} answered {response.status_code} to {path}: {response.text[:300]}",
                hint="check that --from is an MLflow tracking server (its UI answers at that URL)",
            )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"the MLflow tracking server at {self.url} cannot be reached: {exc}",
                hint="check the URL and that the server runs (`mlflow server` answers /health), then try again",
            ) from None
        if response.status_code == 404 and "ENDPOINT_NOT_FOUND" in response.text:
            return {"_missing": True}
        self.check(response, path)
        try:
            data = response.json()
        except ValueError:
            raise ServiceUnavailable(
                f"{self.url}{path} did not answer JSON: {response.text[:200]!r}",
                hint="--from must be an MLflow tracking server's base URL (e.g. http://host:5000)",
            ) from None
        if not isinstance(data, dict):
            raise ServiceUnavailable(f"{self.url}{path} answered {type(data).__name__}, not a JSON object")
        return data

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, json=body)

    def _pages(self, method: str, path: str, args: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            call = dict(args)
            if token:
                call["page_token"] = token
            data = self.post(path, call) if method == "POST" else self.get(path, call)
            yield from (x for x in data.get(key) or [] if isinstance(x, dict))
            token = data.get("next_page_token")
            if not token:
                return

    def experiments(self) -> list[Exp]:
        return [Exp(str(e["experiment_id"]), str(e["name"]), e.get("lifecycle_stage") == "deleted",
                    {t["key"]: str(t.get("value", "")) for t in e.get("tags") or []}, _int(e.get("creation_time")),
                    str(e.get("artifact_location") or ""))
                for e in self._pages("POST", "/api/2.0/mlflow/experiments/search",
                                     {"max_results": 1000, "view_type": "ALL"}, "experiments")]

    def runs(self, exp: Exp) -> list[SourceRun]:
        out = []
        for r in self._pages("POST", "/api/2.0/mlflow/runs/search",
                             {"experiment_ids": [exp.id], "run_view_type": "ALL", "max_results": 1000}, "runs"):
            info, data = r.get("info") or {}, r.get("data") or {}
            run_id = str(info.get("run_id") or info.get("run_uuid"))
            tags = {t["key"]: str(t.get("value", "")) for t in data.get("tags") or []}
            out.append(SourceRun(
                id=run_id, experiment_id=exp.id, name=str(info.get("run_name") or tags.get("mlflow.runName") or ""),
                status=str(info.get("status") or "FINISHED"), start=_int(info.get("start_time")),
                end=_int(info.get("end_time")), user=str(info.get("user_id") or ""),
                deleted=info.get("lifecycle_stage") == "deleted",
                params={p["key"]: str(p.get("value", "")) for p in data.get("params") or []}, tags=tags,
                artifact_uri=str(info.get("artifact_uri") or ""),
                metric_keys=sorted({str(m["key"]) for m in data.get("metrics") or []}),
            ))
        return out

    def metrics(self, run: SourceRun) -> list[tuple[str, float, int, int]]:
        out = []
        for key in run.metric_keys:
            for m in self._pages("GET", "/api/2.0/mlflow/metrics/get-history",
                                 {"run_id": run.id, "run_uuid": run.id, "metric_key": key, "max_results": 25000},
                                 "metrics"):
                out.append((key, float(m.get("value", math.nan)), int(m.get("step") or 0), int(m.get("timestamp") or 0)))
        return out

    def _tree(self, uri: str, run_id: str | None) -> Tree:
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            rel = unquote(parsed.path).strip("/")
            try:
                if rel:
                    check_relative_path(rel)
            except ConveyorError as exc:
                return MissingTree(uri, f"{uri}: {exc.message}")
            return RestTree(self, proxied=rel)
        if run_id is not None:
            return RestTree(self, run_id=run_id)
        return MissingTree(uri, f"{uri} is not behind the server's artifact proxy; this importer cannot read it")

    def artifacts(self, run: SourceRun) -> Tree:
        return self._tree(run.artifact_uri, run.id)

    def logged_models(self, exp: Exp) -> list[LoggedModel]:
        out = []
        for m in self._pages("POST", "/api/2.0/mlflow/logged-models/search",
                             {"experiment_ids": [exp.id], "max_results": 100}, "models"):
            info = m.get("info") or {}
            out.append(LoggedModel(str(info.get("model_id")), str(info.get("name") or info.get("model_id")),
                                   str(info.get("source_run_id") or ""), exp.id, str(info.get("artifact_uri") or "")))
        return out

    def model_tree(self, model: LoggedModel) -> Tree:
        return self._tree(model.artifact_location, None)

    def registered_models(self) -> list[RegisteredModel]:
        out = []
        for m in self._pages("GET", "/api/2.0/mlflow/registered-models/search", {"max_results": 1000},
                             "registered_models"):
            name = str(m["name"])
            quoted = name.replace("'", "\\'")
            versions = [Version(
                model=name, version=int(v["version"]), source=str(v.get("source") or ""),
                run_id=str(v.get("run_id") or ""), status=str(v.get("status") or "READY"),
                stage=str(v.get("current_stage") or "None"), description=str(v.get("description") or ""),
                user=str(v.get("user_id") or ""), created=_int(v.get("creation_timestamp")),
                tags={t["key"]: str(t.get("value", "")) for t in v.get("tags") or []},
            ) for v in self._pages("GET", "/api/2.0/mlflow/model-versions/search",
                                   {"filter": f"name='{quoted}'", "max_results": 10000}, "model_versions")
                if str(v.get("name")) == name]
            versions.sort(key=lambda x: x.version)
            out.append(RegisteredModel(
                name, str(m.get("description") or ""), {t["key"]: str(t.get("value", "")) for t in m.get("tags") or []},
                {a["alias"]: int(a["version"]) for a in m.get("aliases") or []}, versions))
        return out


def open_source(uri: str, *, artifacts_dir: str | None = None) -> FileSource | SqliteSource | RestSource:
    """The reader for ``--from URI``; a URI it cannot read is an error naming it and the fix."""
    hint = ("use an MLflow tracking server's http(s):// URL, a file store folder (./mlruns) "
            "or sqlite:///path/to/mlflow.db")
    proxied = Path(artifacts_dir).expanduser() if artifacts_dir else None
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("--from is empty", field="--from", value=uri, hint=hint)
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        if not parsed.netloc:
            raise InvalidInput(f"{uri!r} names no host", field="--from", value=uri, hint="write http://host:5000")
        return RestSource(uri)
    if scheme == "sqlite":
        raw = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not raw or raw == ":memory:":
            raise InvalidInput(f"{uri!r} names no database file", field="--from", value=uri,
                               hint="write sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db")
        path = Path(unquote(raw.split("?", 1)[0]))
        if not path.is_file():
            raise InvalidInput(f"{uri!r}: no file at {path}", field="--from", value=uri,
                               hint="check the path (sqlite:/// + a relative path, sqlite://// + an absolute one)")
        return SqliteSource(path, proxied or (path.parent / "mlartifacts"), shown=uri)
    if scheme == "file":
        return _folder(Path(unquote(parsed.path)), uri, proxied, hint)
    if scheme and len(scheme) > 1:
        what = {"postgresql": "a PostgreSQL store", "mysql": "a MySQL store", "mssql": "an SQL Server store",
                "databricks": "Databricks", "postgres": "a PostgreSQL store"}.get(scheme.split("+")[0], f"{scheme}://")
        raise InvalidInput(
            f"{uri!r}: importing from {what} directly is not supported",
            field="--from", value=uri,
            hint=("start `mlflow server --backend-store-uri <that URI>` and import from its http:// URL, or " + hint)
            if scheme.split("+")[0] in ("postgresql", "postgres", "mysql", "mssql") else hint,
        )
    return _folder(Path(uri).expanduser(), uri, proxied, hint)


def _folder(path: Path, uri: str, proxied: Path | None, hint: str) -> FileSource | SqliteSource:
    if path.is_file():
        if path.suffix == ".db":
            raise InvalidInput(f"{uri!r} is a file, not a file store folder", field="--from", value=uri,
                               hint=f"for a SQLite store write sqlite:///{path}")
        raise InvalidInput(f"{uri!r} is a file, not an MLflow file store folder", field="--from", value=uri, hint=hint)
    if not path.is_dir():
        raise InvalidInput(f"{uri!r}: no such folder", field="--from", value=uri, hint=hint)
    return FileSource(path, proxied or (path.parent / "mlartifacts"))
