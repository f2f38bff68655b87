"""``conveyor ui``: a server on 127.0.0.1 over the local project, showing its experiments."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_conveyor_ui_serves_the_project_on_loopback(tmp_path: Path) -> None:
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    (tmp_path / "conveyor.toml").write_text("[tracking]\ncapture_git = false\n", encoding="utf-8")
    tracker = Tracker.from_settings(Settings.load(tmp_path, env={}), create=True)
    run = tracker.create_run("from-cli", name="cli-run")
    tracker.log_metric(run.id, "m", 1.0)
    tracker.end_run(run.id)
    tracker.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    process = subprocess.Popen([sys.executable, "-m", "conveyor", "ui", "--no-browser", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/experiments", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "conveyor ui did not start"
                time.sleep(0.3)
        assert page.status_code == 200 and "from-cli" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert f"conveyor UI on http://127.0.0.1:{port}/" in out
