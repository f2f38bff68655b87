"""``conveyor server`` starts without the heavy libraries: checked through ``sys.modules`` of
the real server process when ``/health`` first answers 200 and again after the warm-up
thread has built ``/api/v1`` and the UI, over SQLite and PostgreSQL. Never through timings
(benchmarks/bench_server_start.py measures those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.mlflow_client import SRC, clean_env, free_port

# Runs `conveyor server` in the main thread; a probe thread waits for the first 200 of
# /health, notes the loaded modules, waits for the warm-up thread, notes them again.
_PROBE = """
import json, os, sys, threading, time, urllib.request
port = sys.argv[1]
def probe():
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.02)
    ready = sorted(sys.modules)
    for thread in threading.enumerate():
        if thread.name == "conveyor-warm-up":
            thread.join(120)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/experiments", timeout=30) as answer:
        api = answer.status
    print("\\n@@" + json.dumps({"ready": ready, "warm": sorted(sys.modules), "api": api}), flush=True)
    os._exit(0)
threading.Thread(target=probe, daemon=True).start()
sys.argv = ["conveyor", "server", "--port", port, "--log-level", "warning"]
from conveyor.cli import main
main()
"""

#: Never needed to answer the tracking APIs: the inference stack, data frames, clusters, S3.
HEAVY = ("numpy", "pandas", "pyarrow", "sklearn", "scipy", "skops", "ray", "s3fs", "fsspec", "boto3", "botocore",
         "aiobotocore", "torch", "xgboost", "lightgbm", "matplotlib", "lark_cython")


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A fresh project made by `conveyor init`, over a SQLite file or a new PostgreSQL database."""
    root = tmp_path / "project"
    root.mkdir()
    env = {**clean_env(), "PYTHONPATH": str(SRC)}
    made = None
    if request.param == "postgresql":
        import psycopg

        admin = request.getfixturevalue("postgres_admin")
        made = f"conveyor_start_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{made}"')
        url = f"{admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{made}"
        (root / "conveyor.toml").write_text(f'[store]\nmetadata_url = "{url}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        yield root
    finally:
        if made is not None:
            import psycopg

            with psycopg.connect(request.getfixturevalue("postgres_admin"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')


def _started(root: Path) -> dict[str, object]:
    env = {**clean_env(), "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(free_port())], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert "@@" in done.stdout, f"the server did not come up:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.rpartition("@@")[2])  # type: ignore[no-any-return]


def _heavy(modules: object) -> set[str]:
    assert isinstance(modules, list)
    return {m.split(".")[0] for m in modules} & set(HEAVY)


def test_server_starts_without_heavy_libraries(project: Path) -> None:
    state = _started(project)
    assert state["api"] == 200  # the lazily built /api/v1 answers
    ready, warm = state["ready"], state["warm"]
    assert isinstance(ready, list) and isinstance(warm, list)
    assert "conveyor.server" in ready and "uvicorn" in ready  # the probe saw the real server
    assert _heavy(ready) == set(), "loaded before the first /health"
    assert _heavy(warm) == set(), "loaded by the warm-up (/api/v1 and the UI)"
    assert not any(m.startswith("conveyor.serving.") and m not in ("conveyor.serving._nodelay", "conveyor.serving._server")
                   for m in warm), "the inference server is not part of the tracking server"


# Builds the server's app over the project (as `conveyor server` does before listening) and
# prints the modules loaded by then.
_BUILD = """
import json, sys
from conveyor.server import create_app, open_tracker
app = create_app(open_tracker("."), close_tracker=True)
print("\\n@@" + json.dumps(sorted(sys.modules)))
"""


def test_building_the_app_leaves_api_v1_ui_and_registry_for_later(project: Path) -> None:
    """What the first request (or the warm-up thread right after start) loads is not loaded
    before the server listens: FastAPI (``/api/v1``), the UI's pages and jinja2, the model
    registry (MLflow's registry endpoints), numpy (metric downsampling)."""
    env = {**clean_env(), "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", _BUILD], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert "@@" in done.stdout, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.rpartition("@@")[2]))
    assert "conveyor.server._app" in loaded and "starlette" in loaded
    later = {"fastapi", "jinja2", "conveyor.ui.pages", "conveyor.registry", "numpy", *HEAVY}
    assert loaded & later == set()
