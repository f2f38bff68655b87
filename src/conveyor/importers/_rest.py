"""The reader of an MLflow tracking server (its REST API, over httpx)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from conveyor.blobs import check_relative_path
from conveyor.errors import ConveyorError, InvalidInput, ServiceUnavailable
from conveyor.importers._records import (
    Exp,
    LoggedModel,
    MissingTree,
    Refused,
    RegisteredModel,
    SourceRun,
    Tree,
    Version,
    checked,
    int_or_none,
)


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
                    {t["key"]: str(t.get("value", "")) for t in e.get("tags") or []}, int_or_none(e.get("creation_time")),
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
                status=str(info.get("status") or "FINISHED"), start=int_or_none(info.get("start_time")),
                end=int_or_none(info.get("end_time")), user=str(info.get("user_id") or ""),
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
                user=str(v.get("user_id") or ""), created=int_or_none(v.get("creation_timestamp")),
                tags={t["key"]: str(t.get("value", "")) for t in v.get("tags") or []},
            ) for v in self._pages("GET", "/api/2.0/mlflow/model-versions/search",
                                   {"filter": f"name='{quoted}'", "max_results": 10000}, "model_versions")
                if str(v.get("name")) == name]
            versions.sort(key=lambda x: x.version)
            out.append(RegisteredModel(
                name, str(m.get("description") or ""), {t["key"]: str(t.get("value", "")) for t in m.get("tags") or []},
                {a["alias"]: int(a["version"]) for a in m.get("aliases") or []}, versions))
        return out
