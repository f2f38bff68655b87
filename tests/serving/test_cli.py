"""`conveyor build` (parsed, no Docker engine here) and `conveyor serve` as a real process:
SIGTERM under load lets in-flight requests finish and flushes the prediction log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import free_port


@pytest.fixture
def champion(project: Path) -> str:
    """A project whose registry has lin v1 (y = 2x) as champion."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor
    import conveyor.models
    import conveyor.registry

    x = pd.DataFrame({"x": np.arange(10, dtype=float)})
    with conveyor.start_run(experiment="cli") as run:
        conveyor.models.log(LinearRegression().fit(x, 2 * x["x"]), "model", input_example=x[:3])
    version = conveyor.registry.register(f"runs:/{run.id}/model", "lin").version
    conveyor.registry.set_alias("lin", "champion", version)
    conveyor.tracking.get_tracker().flush()
    return "models:/lin@champion"


def test_build_writes_a_parseable_context(champion: str, project: Path) -> None:
    import yaml

    from conveyor.cli import app

    result = CliRunner().invoke(app, ["build", champion, "--out", "ctx", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    ctx = project / "ctx"
    assert {"Dockerfile", "requirements.txt", "kubernetes.yaml", "model/conveyor-model.json"} <= set(info["files"])
    lines = (ctx / "Dockerfile").read_text().splitlines()
    assert lines[1].startswith("FROM python:3.11")
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "/v2/health/ready" in health
    cmd = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    assert cmd[:3] == ["conveyor", "serve", "/srv/model"] and cmd[cmd.index("--name") + 1] == "lin"
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    reqs = (ctx / "requirements.txt").read_text().splitlines()
    assert all("==" in r for r in reqs)
    assert {r.split("==")[0] for r in reqs} >= {"uvicorn", "starlette", "scikit-learn", "skops", "sqlalchemy"}
    from importlib.metadata import version

    assert [p.name for p in (ctx / "wheels").iterdir()] == [f"conveyor_mlops-{version('conveyor-mlops')}-py3-none-any.whl"]
    docs = list(yaml.safe_load_all((ctx / "kubernetes.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == info["image"] == "conveyor-lin:1"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == 8080
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    # the model package in the context loads and answers
    import conveyor.models

    assert conveyor.models.load(ctx / "model").predict([{"x": 4.0}]).tolist() == pytest.approx([8.0])
    again = CliRunner().invoke(app, ["build", champion, "--out", "ctx"])
    assert again.exit_code == 2 and "not empty" in again.output

    # The image's command, run here: serve the package folder under the name and version given.
    port = free_port()
    args = cmd[1:cmd.index("--host")] + ["--port", str(port), "--log-level", "warning", "--no-create-store"]
    args[1] = str(ctx / "model")
    proc = subprocess.Popen([sys.executable, "-m", "conveyor", *args], cwd=project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        r = httpx.post(f"http://127.0.0.1:{port}/v2/models/lin/infer", json={"inputs": [
            {"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]}]})
        assert r.json()["model_version"] == "1" and r.json()["outputs"][0]["data"] == pytest.approx([6.0])
    finally:
        proc.terminate()
        proc.wait(60)


def test_build_carries_the_projects_trust_into_the_images_command(champion: str, project: Path) -> None:
    """The image has no conveyor.toml: what the project trusts ([models] trusted_modules and
    --trust) beyond the defaults must be in the command that serves the model there."""
    from conveyor.cli import app

    with (project / "conveyor.toml").open("a") as f:
        f.write('\n[models]\ntrusted_modules = ["sklearn", "numpy", "scipy", "mylib.features"]\n')
    result = CliRunner().invoke(app, ["build", champion, "--out", "ctx", "--trust", "mylib.make_model"])
    assert result.exit_code == 0, result.output
    lines = (project / "ctx" / "Dockerfile").read_text().splitlines()
    cmd = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    trusted = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--trust"]
    assert trusted == ["mylib.features", "mylib.make_model"]  # the defaults are the image's own defaults too


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_") or k == "CONVEYOR_TEST_POSTGRES"}


def test_serve_alias_that_points_nowhere_exits_3(champion: str) -> None:
    from conveyor.cli import app

    result = CliRunner().invoke(app, ["serve", "models:/lin@nowhere", "--port", str(free_port())])
    assert result.exit_code == 3
    assert "lin@nowhere" in result.output


def _wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def test_sigterm_under_load_finishes_in_flight_requests_and_flushes_the_log(champion: str, project: Path) -> None:
    import conveyor.serving

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", champion, "--port", str(port), "--log-level", "warning"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, proc)
        answered: list[int] = []  # rows of every request answered 200
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    r = httpx.post(f"{url}/invocations", json={"instances": [1.0, 2.0]}, timeout=30)
                except httpx.TransportError:  # after shutdown began, new connections are refused
                    continue
                statuses.append(r.status_code)
                if r.status_code == 200:
                    answered.append(2)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        # An in-flight request: headers and half the body are sent before SIGTERM.
        body = json.dumps({"instances": [float(i) for i in range(20_000)]}).encode()
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        slow.sendall(body[len(body) // 2:])
        slow.settimeout(30)
        answer = b""
        while True:
            chunk = slow.recv(65536)
            if not chunk:
                break
            answer += chunk
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), None)
            if length is not None and len(rest) >= length:
                break
        slow.close()
        stop.set()
        for t in threads:
            t.join()
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit here
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["predictions"][:3] == pytest.approx([0.0, 2.0, 4.0])
    assert set(statuses) == {200} and answered
    log = conveyor.serving.read_prediction_log("lin")
    assert len(log) == sum(answered) + 20_000  # nothing lost: every answered row was logged


@pytest.mark.slow
def test_metrics_of_several_workers_add_up(champion: str, project: Path) -> None:
    """With --workers 2, /metrics (answered by whichever worker) counts every worker's
    requests: prometheus_client's multiprocess mode. Before, each worker answered for itself."""
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", champion, "--port", str(port), "--workers", "2",
         "--log-level", "warning", "--no-log"],
        cwd=project, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, proc)
        time.sleep(2)  # both workers up

        def send(n: int) -> None:
            with httpx.Client(timeout=30) as c:  # one connection: it lands on one worker
                for _ in range(n):
                    assert c.post(f"{url}/invocations", json={"instances": [1.0]}).status_code == 200

        threads = [threading.Thread(target=send, args=(3,)) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        totals = []
        for _ in range(6):
            text = httpx.get(f"{url}/metrics", headers={"connection": "close"}).text
            totals.append(sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                              if s.name == "conveyor_requests_total" and s.labels.get("code") == "200"))
        assert totals == [60] * 6
    finally:
        proc.terminate()
        proc.wait(60)
    assert proc.returncode in (0, -signal.SIGTERM)
