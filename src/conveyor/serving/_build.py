"""``conveyor build``: a Docker build context and a Kubernetes manifest for one model.

No Docker engine is needed to write them: the context holds the model package (copied
out of the artifact store), ``requirements.txt`` pinned to the versions installed here
plus the package's own pins, a ``Dockerfile`` (non-root user, HEALTHCHECK on the OIP
readiness route, ``conveyor serve`` of the package folder) and ``kubernetes.yaml``
(Deployment + Service, with readiness and liveness probes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput

#: what the server itself needs in the image, pinned to the versions installed here
SERVER_PACKAGES = ("conveyor-mlops", "starlette", "uvicorn", "httptools", "uvloop", "orjson", "numpy", "pandas", "pyarrow")
PORT = 8080


@dataclass(frozen=True)
class BuildResult:
    """What ``build_context`` wrote."""

    folder: Path
    name: str
    version: str
    image: str
    files: tuple[str, ...]


def _pins(extra: list[str]) -> list[str]:
    pins: dict[str, str] = {}
    for req in extra:
        key = re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].strip().lower().replace("_", "-")
        if key:
            pins[key] = req.strip()
    for package in SERVER_PACKAGES:
        if package not in pins:
            try:
                pins[package] = f"{package}=={importlib_metadata.version(package)}"
            except importlib_metadata.PackageNotFoundError:
                continue
    return [pins[k] for k in sorted(pins)]


def _dockerfile(name: str, version: str) -> str:
    probe = (f"import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
             f"'http://127.0.0.1:{PORT}/v2/health/ready', timeout=2).status == 200 else 1)")
    command = ["conveyor", "serve", "/srv/model", "--name", name, "--model-version", version,
               "--host", "0.0.0.0", "--port", str(PORT)]
    return "\n".join([
        "# Written by `conveyor build`; builds without network access to the model store.",
        "FROM python:3.11-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        "RUN useradd --create-home --uid 10001 conveyor",
        "WORKDIR /srv",
        "COPY requirements.txt /srv/requirements.txt",
        "RUN pip install --no-cache-dir -r /srv/requirements.txt",
        "COPY model/ /srv/model/",
        "RUN chown -R conveyor /srv",
        "USER conveyor",
        f"EXPOSE {PORT}",
        "# Inside a container the server must listen on all interfaces; outside it binds 127.0.0.1.",
        f"HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD python -c \"{probe}\"",
        f"CMD {json.dumps(command)}",
        "",
    ])


def _manifest(name: str, version: str, image: str) -> list[dict[str, Any]]:
    app = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:50] or "model"
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": str(version),
              "app.kubernetes.io/part-of": "conveyor"}

    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT}, "periodSeconds": 10}

    container = {
        "name": "server", "image": image, "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {**probe("/v2/health/ready"), "initialDelaySeconds": 5},
        "livenessProbe": {**probe("/v2/health/live"), "initialDelaySeconds": 15},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 45, "containers": [container]}}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
        "spec": {"selector": {"app.kubernetes.io/name": app},
                 "ports": [{"name": "http", "port": 80, "targetPort": PORT}]},
    }
    return [deployment, service]


def _yaml(value: Any, indent: int = 0) -> str:
    """One YAML document, block style, keys in the given order (PyYAML's safe dumper)."""
    import yaml

    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000)
    return text.rstrip("\n").removesuffix("\n...")


def build_context(uri: str, out: str | Path, *, tracker: Any = None, image: str | None = None) -> BuildResult:
    """Write the build context of the registered model ``uri`` into ``out`` (must be empty
    or absent).

    Example::

        >>> build_context("models:/iris@champion", "build/iris")  # doctest: +SKIP
        BuildResult(folder=PosixPath('build/iris'), name='iris', version='3', ...)
    """
    from conveyor.blobs import Digest
    from conveyor.registry import Registry

    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise InvalidInput(f"{folder} is not empty", field="out", value=str(folder),
                           hint="name a new or empty folder")
    registry = Registry(tracker)
    ref = registry.resolve(uri)
    if not ref.digest:
        raise InvalidInput(f"{uri} has no stored package", field="uri", value=uri)
    folder.mkdir(parents=True, exist_ok=True)
    tracker.blobs.get_tree(Digest.parse(ref.digest), folder / "model")
    meta_file = folder / "model" / "conveyor-model.json"
    requirements = list(json.loads(meta_file.read_text("utf-8")).get("requirements", [])) if meta_file.exists() else []
    version = str(ref.version)
    image = image or f"conveyor-{ref.name.lower()}:{version}"
    (folder / "requirements.txt").write_text("\n".join(_pins(requirements)) + "\n", "utf-8")
    (folder / "Dockerfile").write_text(_dockerfile(ref.name, version), "utf-8")
    docs = _manifest(ref.name, version, image)
    (folder / "kubernetes.yaml").write_text("\n---\n".join(_yaml(d) for d in docs) + "\n", "utf-8")
    (folder / ".dockerignore").write_text("kubernetes.yaml\n", "utf-8")
    files = tuple(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()))
    return BuildResult(folder, ref.name, version, image, files)
