"""Benchmark: conveyor's runs table next to MLflow's UI on the same N runs (default 100,000),
in Debian's Chromium through Playwright (issue 14, Performance, third bullet).

Both stores are BULK-LOADED outside the timed region; neither side logged its runs through
its client. Logging 100,000 runs through the ``mlflow`` client into ``mlflow server`` would
take hours (about 54 ms per call, several calls per run), so the MLflow side gets its rows by
direct inserts into a SQLite database whose schema the real ``mlflow db upgrade`` created:

- conveyor: ``tests/fixtures/bulk_runs.py`` writes one experiment of N finished runs (params
  ``lr``, ``depth``, ``model``; metrics ``acc``, ``loss``; tags ``team``, ``sweep``);
- MLflow: the very same runs (ids, names, times, values) are read back from conveyor's store
  and inserted into MLflow's ``experiments``, ``runs``, ``params``, ``metrics``,
  ``latest_metrics`` and ``tags`` tables with sqlite3.

Each server runs as its own process: ``mlflow server --workers 1`` (the full ``mlflow`` in its
own virtualenv, benchmarks/.venvs/mlflow-server, created on first use) and ``conveyor server``.
For each side, in a fresh browser context (cold cache) per load: navigation start → the first
row of the runs table visible. MLflow: ``#/experiments/<id>/runs``, first ag-grid row;
conveyor: ``/experiments/<id>``, the first ``#runs tbody tr``. Median of --repeat loads; a
side whose table is not visible within --timeout seconds is reported as "> timeout".

Run: ``PYTHONPATH=src:tests .venv/bin/python benchmarks/bench_ui_mlflow.py [--runs 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import WORK, peer_python  # noqa: E402

EXPERIMENT = "sweep"
#: The first row of MLflow's runs table (ag-grid; the run-name column is pinned left) showing a
#: run's name, not a loading placeholder; conveyor's server-rendered table likewise.
MLFLOW_ROW = ".ag-pinned-left-cols-container .ag-row[row-index='0']:has-text('sweep-')"
CONVEYOR_ROW = "#runs tbody tr:has-text('sweep-')"


def build_conveyor(root: Path, n: int) -> None:
    from fixtures.bulk_runs import bulk_experiment

    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "conveyor.toml").write_text("[tracking]\ncapture_git = false\n", encoding="utf-8")
    tracker = Tracker.from_settings(Settings.load(root, env={}), create=True)
    t = time.perf_counter()
    bulk_experiment(tracker, EXPERIMENT, n)
    print(f"conveyor: bulk-loaded {n:,} runs in {time.perf_counter() - t:.1f} s")
    tracker.close()


def build_mlflow(conveyor_root: Path, db: Path, artifacts: Path, mlflow: Path) -> int:
    """Create MLflow's schema with the real ``mlflow db upgrade``, then insert conveyor's runs."""
    from sqlalchemy import select

    from conveyor.settings import Settings
    from conveyor.store import latest_metrics, params, run_tags, runs
    from conveyor.tracking import Tracker

    db.unlink(missing_ok=True)
    subprocess.run([str(mlflow), "db", "upgrade", f"sqlite:///{db}"], check=True, capture_output=True)
    t = time.perf_counter()
    tracker = Tracker.from_settings(Settings.load(conveyor_root, env={}))
    with tracker.store.read() as conn:
        run_rows = conn.execute(select(runs.c.id, runs.c.name, runs.c.status, runs.c.start_time, runs.c.end_time,
                                       runs.c.user)).all()
        param_rows = conn.execute(select(params.c.key, params.c.value, params.c.run_id)).all()
        metric_rows = conn.execute(select(latest_metrics.c.key, latest_metrics.c.value, latest_metrics.c.timestamp,
                                          latest_metrics.c.step, latest_metrics.c.run_id)).all()
        tag_rows = conn.execute(select(run_tags.c.key, run_tags.c.value, run_tags.c.run_id)).all()
    tracker.close()
    out = sqlite3.connect(db)
    with out:
        now = int(time.time() * 1000)
        experiment_id = 1
        out.execute("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time,"
                    " last_update_time) VALUES (?, ?, ?, 'active', ?, ?)",
                    (experiment_id, EXPERIMENT, str(artifacts / str(experiment_id)), now, now))
        # A classic ML experiment: MLflow 3 otherwise asks which kind it is before showing runs.
        out.execute("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)",
                    ("mlflow.experimentKind", "custom_model_development", experiment_id))
        out.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
            " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)"
            " VALUES (?, ?, 'LOCAL', '', '', ?, ?, ?, ?, '', 'active', ?, ?)",
            [(r.id, r.name, r.user, r.status, r.start_time, r.end_time,
              str(artifacts / str(experiment_id) / r.id / "artifacts"), experiment_id) for r in run_rows])
        out.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", [tuple(p) for p in param_rows])
        out.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                        [(m.key, m.value, m.timestamp, m.run_id, m.step) for m in metric_rows])
        out.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                        " VALUES (?, ?, ?, ?, 0, ?)",
                        [(m.key, m.value, m.timestamp, m.step, m.run_id) for m in metric_rows])
        # MLflow shows a run's name from its mlflow.runName tag as well as the column.
        out.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                        [tuple(t) for t in tag_rows] + [("mlflow.runName", r.name, r.id) for r in run_rows])
    out.close()
    print(f"mlflow: bulk-loaded the same {len(run_rows):,} runs ({len(param_rows):,} params, "
          f"{len(metric_rows):,} metrics, {len(tag_rows):,} tags) in {time.perf_counter() - t:.1f} s")
    return experiment_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[Any], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


def first_row_times(browser: Any, url: str, selector: str, repeat: int, timeout: float) -> list[float | None]:
    """Seconds from navigation start to the first visible table row, one cold load each
    (a fresh browser context, so an empty cache); None when not visible within ``timeout``."""
    times: list[float | None] = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            page.goto(url, wait_until="commit", timeout=timeout * 1000)
            page.locator(selector).first.wait_for(state="visible", timeout=timeout * 1000)
            # performance.now() counts from the document's time origin: its navigation start.
            times.append(float(page.evaluate("performance.now()")) / 1000)
        except Exception as exc:  # noqa: BLE001 - a timeout is the figure, reported as such
            if "Timeout" not in type(exc).__name__ and "Timeout" not in str(exc):
                raise
            times.append(None)
        finally:
            context.close()
    return times


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def show(seconds: float | None, timeout: float) -> str:
    return f"> {timeout:.0f} s (never usable)" if seconds is None else f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a load counts as never usable")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    work = WORK / "bench_ui_mlflow" / str(args.runs)
    conveyor_root, db, artifacts = work / "conveyor", work / "mlflow.db", work / "mlflow-artifacts"
    mlflow_python = peer_python("mlflow-server", ["mlflow"])
    mlflow = mlflow_python.parent / "mlflow"
    if args.rebuild or not (work / "built").exists():
        work.mkdir(parents=True, exist_ok=True)
        (work / "built").unlink(missing_ok=True)
        build_conveyor(conveyor_root, args.runs)
        build_mlflow(conveyor_root, db, artifacts, mlflow)
        (work / "built").write_text(str(args.runs))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    conveyor_port, mlflow_port = free_port(), free_port()
    conveyor = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "server", "--port", str(conveyor_port), "--log-level", "warning"],
        cwd=conveyor_root, env={**env, "PYTHONPATH": str(ROOT / "src")})
    mlflow_server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{db}", "--default-artifact-root", str(artifacts)],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conveyor_base, mlflow_base = f"http://127.0.0.1:{conveyor_port}", f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_up(conveyor_base + "/health", conveyor, "conveyor server")
        wait_up(mlflow_base + "/health", mlflow_server, "mlflow server")
        conveyor_experiment = httpx.get(conveyor_base + "/api/2.0/mlflow/experiments/get-by-name",
                                        params={"experiment_name": EXPERIMENT}).json()["experiment"]["experiment_id"]
        mlflow_experiment = httpx.get(mlflow_base + "/api/2.0/mlflow/experiments/get-by-name",
                                      params={"experiment_name": EXPERIMENT}).json()["experiment"]["experiment_id"]
        urls = {"MLflow": (f"{mlflow_base}/#/experiments/{mlflow_experiment}/runs", MLFLOW_ROW),
                "conveyor": (f"{conveyor_base}/experiments/{conveyor_experiment}", CONVEYOR_ROW)}
        from fixtures.browser import CHROMIUM, CHROMIUM_ARGS
        from playwright.sync_api import sync_playwright

        results: dict[str, list[float | None]] = {}
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for side, (url, selector) in urls.items():
                first_row_times(browser, url, selector, 1, args.timeout)  # warm the server, not the browser
                results[side] = first_row_times(browser, url, selector, args.repeat, args.timeout)
                print(f"{side}: {url} → {[show(x, args.timeout) for x in results[side]]}")
            browser.close()
    finally:
        stop(conveyor)
        stop(mlflow_server)

    def med(values: list[float | None]) -> float | None:
        # A timed-out load counts as longer than any finished one.
        ordered = sorted(values, key=lambda v: float("inf") if v is None else v)
        return ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else (
            None if None in ordered[len(ordered) // 2 - 1: len(ordered) // 2 + 1]
            else statistics.median(ordered[len(ordered) // 2 - 1: len(ordered) // 2 + 1]))

    m, c = med(results["MLflow"]), med(results["conveyor"])
    ratio = "n/a" if c is None else (f"> {args.timeout / c:,.0f}×" if m is None else f"{m / c:.1f}×")
    print(f"\n{args.runs:,} runs, bulk-loaded into both stores (not logged through a client); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; median of {args.repeat} cold loads")
    print("| navigation start → first run row visible | MLflow UI | conveyor | MLflow / conveyor |\n|---|---|---|---|")
    print(f"| {args.runs:,} runs, experiment's runs view | {show(m, args.timeout)} | {show(c, args.timeout)} | {ratio} |")


if __name__ == "__main__":
    main()
