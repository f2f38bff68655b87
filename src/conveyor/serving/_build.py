"""``conveyor build``: a Docker build context and a Kubernetes manifest for one model.

No Docker engine is needed to write them. The context holds:

- ``model/``: the model package, copied out of the artifact store (READY versions only);
- ``wheels/``: a wheel of conveyor itself, built from the installed source, because
  ``conveyor-mlops`` need not be on any index the image reaches (``--conveyor-requirement``
  names a reachable requirement instead);
- ``requirements.txt``: PEP 508 lines only, pinned to the versions installed here: conveyor's
  runtime dependencies, the server's, and the package's own (validated: no pip options, URLs
  or paths; see ``_requirements``);
- ``Dockerfile``: non-root user, HEALTHCHECK on the OIP readiness route, and ``conveyor serve``
  of the package folder with ``--no-create-store``: the store the server logs predictions to
  comes from ``CONVEYOR_STORE_*`` environment variables, never a silent local ``.conveyor/``;
- ``kubernetes.yaml``: Deployment + Service with readiness and liveness probes, the store
  settings read from the Secret ``conveyor-store`` (keys ``metadata_url``, ``artifacts_url``,
  optional ``s3_endpoint_url``, ``aws_access_key_id``, ``aws_secret_access_key``).

The context is written to a temporary sibling folder and renamed into place, so a failed
build leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.serving._requirements import (
    conveyor_runtime_pins,
    merge_pins,
    package_requirements,
    parse_requirement,
)
from conveyor.serving._wheel import build_wheel

#: what the server itself needs in the image, pinned to the versions installed here
SERVER_PACKAGES = ("starlette", "uvicorn", "httptools", "uvloop", "orjson", "numpy", "pandas", "pyarrow",
                   "prometheus_client")
PORT = 8080
#: the Secret the manifest reads the store settings from
STORE_SECRET = "conveyor-store"
#: environment variable → (Secret key, optional)
STORE_ENV = {
    "CONVEYOR_STORE_METADATA_URL": ("metadata_url", False),
    "CONVEYOR_STORE_ARTIFACTS_URL": ("artifacts_url", False),
    "CONVEYOR_STORE_S3_ENDPOINT_URL": ("s3_endpoint_url", True),
    "AWS_ACCESS_KEY_ID": ("aws_access_key_id", True),
    "AWS_SECRET_ACCESS_KEY": ("aws_secret_access_key", True),
}


@dataclass(frozen=True)
class BuildResult:
    """What ``build_context`` wrote."""

    folder: Path
    name: str
    version: str
    image: str
    files: tuple[str, ...]


def _installed(packages: tuple[str, ...]) -> list[str]:
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            continue
    return pins


def _store_packages(tracker: Any) -> tuple[str, ...]:
    """The drivers the image needs for a store like this project's (PostgreSQL, S3)."""
    extra: list[str] = []
    if str(getattr(tracker.store, "url", "")).startswith("postgresql"):
        extra.append("psycopg")
        extra.append("psycopg-binary")
    if str(getattr(tracker.blobs, "url", "")).startswith("s3://"):
        extra.append("s3fs")
    return tuple(extra)


def _dockerfile(name: str, version: str, install: str, trust: Sequence[str] = ()) -> str:
    probe = (f"import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
             f"'http://127.0.0.1:{PORT}/v2/health/ready', timeout=2).status == 200 else 1)")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return "\n".join([
        "# Written by `conveyor build`; builds without network access to the model store.",
        f"FROM python:{python}-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        "RUN useradd --create-home --uid 10001 conveyor",
        "WORKDIR /srv",
        "COPY requirements.txt /srv/requirements.txt",
        "COPY wheels/ /srv/wheels/",
        f"RUN pip install --no-cache-dir {install} -r /srv/requirements.txt",
        "COPY model/ /srv/model/",
        "RUN chown -R conveyor /srv",
        "USER conveyor",
        f"EXPOSE {PORT}",
        "# The store (prediction log, feedback) comes from the environment: "
        + ", ".join(k for k, (_, optional) in STORE_ENV.items() if not optional) + ".",
        "# Inside a container the server must listen on all interfaces; outside it binds 127.0.0.1.",
        f"HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD python -c \"{probe}\"",
        f"CMD {json.dumps(serve_command(name, version, trust))}",
        "",
    ])


def serve_command(name: str, version: str, trust: Sequence[str] = ()) -> list[str]:
    """The image's command: serve the package folder, with the store from the environment.
    ``trust`` entries beyond the default trusted modules become ``--trust`` options: the
    image has no ``conveyor.toml``, so what the project trusted must travel in the command."""
    from conveyor.models._trust import DEFAULT_TRUSTED_MODULES

    extra = [entry for entry in dict.fromkeys(trust) if entry not in DEFAULT_TRUSTED_MODULES]
    return ["conveyor", "serve", "/srv/model", "--name", name, "--model-version", version,
            "--host", "0.0.0.0", "--port", str(PORT), "--no-create-store",
            *(arg for entry in extra for arg in ("--trust", entry))]


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
        "env": [
            {"name": var, "valueFrom": {"secretKeyRef": {"name": STORE_SECRET, "key": key,
                                                         **({"optional": True} if optional else {})}}}
            for var, (key, optional) in STORE_ENV.items()
        ],
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


def build_context(
    uri: str,
    out: str | Path,
    *,
    tracker: Any = None,
    image: str | None = None,
    conveyor_requirement: str | None = None,
    trust: Sequence[str] = (),
) -> BuildResult:
    """Write the build context of the registered model ``uri`` into ``out`` (must be empty
    or absent). The version must be READY; the package's requirements must be PEP 508 lines.

    ``conveyor_requirement`` (e.g. ``"conveyor-mlops==0.2.0"`` from a private index) replaces
    the wheel of the running conveyor that the context carries by default. ``trust`` lists
    the trust entries (``[models] trusted_modules`` plus ``--trust``) the model needs to
    load; the image's command repeats those beyond the defaults.

    Example::

        >>> build_context("models:/iris@champion", "build/iris")  # doctest: +SKIP
        BuildResult(folder=PosixPath('build/iris'), name='iris', version='3', ...)
    """
    from conveyor.registry import Registry
    from conveyor.registry._registry import require_ready

    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{folder} is not empty", field="out", value=str(folder),
                           hint="name a new or empty folder")
    if conveyor_requirement is not None:
        conveyor_requirement = parse_requirement(conveyor_requirement)
    registry = Registry(tracker)
    found = registry.get(uri)
    require_ready(found, "build")
    if not found.digest:
        raise InvalidInput(f"{uri} has no stored package", field="uri", value=uri)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        version = str(found.version)
        image = image or f"conveyor-{found.name.lower()}:{version}"
        _write(staging, tracker, found, image, conveyor_requirement, trust)
        files = tuple(sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()))
        staging.chmod(0o755)  # mkdtemp made it private
        os.replace(staging, folder)  # an empty target folder is replaced whole
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(folder, found.name, version, image, files)


def _write(folder: Path, tracker: Any, found: Any, image: str, conveyor_requirement: str | None,
           trust: Sequence[str]) -> None:
    from conveyor.blobs import Digest

    tracker.blobs.get_tree(Digest.parse(found.digest), folder / "model")
    meta_file = folder / "model" / "conveyor-model.json"
    meta = json.loads(meta_file.read_text("utf-8")) if meta_file.exists() else {}
    own = package_requirements(meta.get("requirements") if isinstance(meta, dict) else None)
    (folder / "wheels").mkdir()
    if conveyor_requirement is None:
        wheel = build_wheel(folder / "wheels")
        install = f"/srv/wheels/{wheel.name}"
    else:
        install = shlex.quote(conveyor_requirement)
    defaults = [*conveyor_runtime_pins(), *_installed(SERVER_PACKAGES), *_installed(_store_packages(tracker))]
    (folder / "requirements.txt").write_text("\n".join(merge_pins(own, defaults)) + "\n", "utf-8")
    version = str(found.version)
    (folder / "Dockerfile").write_text(_dockerfile(found.name, version, install, trust), "utf-8")
    docs = _manifest(found.name, version, image)
    (folder / "kubernetes.yaml").write_text("\n---\n".join(_yaml(d) for d in docs) + "\n", "utf-8")
    (folder / ".dockerignore").write_text("kubernetes.yaml\n", "utf-8")
