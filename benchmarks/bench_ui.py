"""Benchmark: the web UI in Chromium against `conveyor server` on this machine.

1. Runs table over 100,000 runs, filtered and sorted: the server's answer time for the page
   (httpx, median of repeats) and the time until the page is loaded in Chromium
   (navigation start → load event, from the Navigation Timing API).
2. A run page with 10 metrics × 100,000 points: navigation start → every chart drawn (the
   page sets ``data-charts-drawn-ms`` on <body> when the last chart has its data).

The project is built once in benchmarks/.work/bench_ui (bulk inserts; --rebuild to redo);
the server runs as its own process (`python -m conveyor server`).

Run: ``PYTHONPATH=src:tests .venv/bin/python benchmarks/bench_ui.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / "benchmarks" / ".work" / "bench_ui"
FILTER = "metrics.acc > 0.5 and params.model = 'gbr' and tags.team = 'ml'"
ORDER = "metrics.acc desc"


def build(root: Path) -> None:
    from fixtures.bulk_runs import bulk_experiment

    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "conveyor.toml").write_text("[tracking]\ncapture_git = false\n", encoding="utf-8")
    tracker = Tracker.from_settings(Settings.load(root, env={}), create=True)
    t = time.perf_counter()
    bulk_experiment(tracker, "sweep-100k", 100_000)
    print(f"built 100,000 runs in {time.perf_counter() - t:.1f} s")
    run = tracker.create_run("long", name="ten-long-metrics")
    t = time.perf_counter()
    for k in range(10):
        rows = [(run.id, f"metric_{k}", math.exp(-s / 30_000) + 0.05 * math.sin(s / (50 + k)), s, 1_700_000_000_000 + s)
                for s in range(100_000)]
        for start in range(0, len(rows), 50_000):
            tracker._write_points(rows[start : start + 50_000])
    tracker.end_run(run.id)
    print(f"wrote 10 × 100,000 points in {time.perf_counter() - t:.1f} s")
    (root / "long-run-id").write_text(run.id)
    tracker.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.rebuild or not (WORK / "long-run-id").exists():
        build(WORK)
    run_id = (WORK / "long-run-id").read_text()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    server = subprocess.Popen([sys.executable, "-m", "conveyor", "server", "--port", str(port), "--log-level", "warning"],
                              cwd=WORK, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        experiment = httpx.get(base + "/api/2.0/mlflow/experiments/get-by-name",
                               params={"experiment_name": "sweep-100k"}).json()["experiment"]["experiment_id"]
        table = f"{base}/experiments/{experiment}?filter={quote(FILTER)}&order={quote(ORDER)}"
        plain = f"{base}/experiments/{experiment}"
        with httpx.Client() as client:
            report = {}
            for label, url in (("filtered + sorted", table), ("unfiltered, newest first", plain)):
                client.get(url)
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    answer = client.get(url)
                    times.append(time.perf_counter() - t)
                    assert answer.status_code == 200 and "sweep-" in answer.text
                report[label] = statistics.median(times)
        from fixtures.browser import CHROMIUM, CHROMIUM_ARGS
        from playwright.sync_api import sync_playwright

        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            loads, charts = [], []
            for _ in range(args.repeat):
                page.goto(table)
                timing = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()")
                loads.append(timing / 1000)
                assert page.locator("#runs tbody tr").count() == 50
            for _ in range(args.repeat):
                page.goto(f"{base}/runs/{run_id}")
                deadline = time.monotonic() + 60
                while not page.evaluate("document.body.dataset.chartsDrawnMs"):
                    assert time.monotonic() < deadline, "charts not drawn in 60 s"
                    time.sleep(0.02)
                charts.append(float(page.evaluate("document.body.dataset.chartsDrawnMs")) / 1000)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; median of {args.repeat}")
    print("| measure | time | target |\n|---|---|---|")
    print(f"| runs table over 100,000 runs, filtered + sorted: server answer | {report['filtered + sorted'] * 1000:.0f} ms | < 300 ms |")
    print(f"| runs table, unfiltered (newest first): server answer | {report['unfiltered, newest first'] * 1000:.0f} ms | |")
    print(f"| runs table filtered + sorted: page loaded in Chromium | {statistics.median(loads) * 1000:.0f} ms | < 1 s |")
    print(f"| run page, 10 metrics × 100,000 points: all charts drawn | {statistics.median(charts) * 1000:.0f} ms | < 1.5 s |")


if __name__ == "__main__":
    main()
