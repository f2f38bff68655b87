"""Logging through the team server: conveyor's remote mode vs MLflow's client + server.

1. ``--points`` (default 10,000) ``conveyor.log_metric`` calls in one client process with
   ``CONVEYOR_SERVER_URL`` pointing at ``conveyor server`` (SQLite + local artifacts), timed
   from the first call until ``end_run`` returned (so every point is on the server), vs
   ``--mlflow-points`` (default: the same) ``mlflow.log_metric`` calls through ``mlflow
   server`` (its own virtualenv, benchmarks/.venvs/mlflow-server, SQLite + local
   artifacts). Printed per call and as a ratio of the per-call times (when the two counts
   differ the ratio says so). Both servers' stores are then counted: every point arrived.
2. ``--clients`` (16) concurrent client processes, each logging ``--runs`` runs (default 50;
   the issue's figure is ``--runs 1000``) × 10 metrics through ``conveyor server``:
   throughput (points and runs per second, wall time from the first client's start to the
   last client's end) and a count of the server's store proving no point was lost.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_server_logging.py [--points 10000]
[--mlflow-points 1000] [--mlflow-workers 1] [--clients 16] [--runs 1000] [--skip-mlflow]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, peer_python, table  # noqa: E402
from bench_server import free_port, start, stop  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"

CONVEYOR_CLIENT = """
import json, time, conveyor
conveyor.set_experiment("bench")
run = conveyor.start_run(name="points")
t0 = time.perf_counter()
for i in range({points}):
    conveyor.log_metric("loss", 1.0 / (i + 1), step=i)
t1 = time.perf_counter()
conveyor.end_run()
t2 = time.perf_counter()
print(json.dumps({{"run": run.id, "log": t1 - t0, "total": t2 - t0}}))
"""

MLFLOW_CLIENT = """
import json, time, mlflow
mlflow.set_experiment("bench")
run = mlflow.start_run()
t0 = time.perf_counter()
for i in range({points}):
    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
t1 = time.perf_counter()
mlflow.end_run()
t2 = time.perf_counter()
print(json.dumps({{"run": run.info.run_id, "log": t1 - t0, "total": t2 - t0}}))
"""

CONCURRENT_CLIENT = """
import json, sys, time, conveyor
conveyor.set_experiment("concurrent")
conveyor.tracking.get_tracker()
print("ready", flush=True)
sys.stdin.readline()  # every client starts at once, after all of them have started up
t0 = time.perf_counter()
for r in range({runs}):
    with conveyor.start_run(name=f"c{client}-{{r}}"):
        conveyor.log_metrics({{f"m{{k}}": r * 10 + k for k in range(10)}}, step=r)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def _client(python: str | Path, code: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(python), "-c", textwrap.dedent(code)], cwd=cwd, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, err = proc.communicate(timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"client failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _conveyor_server(folder: Path, clean: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    env = {**clean, "PYTHONPATH": str(SRC)}
    folder.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=folder, env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc, _ = start([sys.executable, "-m", "conveyor", "server", "--port", str(port), "--log-level", "warning"],
                    folder, env, url)
    return proc, url


def _count_conveyor(folder: Path, experiment: str) -> tuple[int, int]:
    """(runs, metric points) of an experiment in the server's own store."""
    from sqlalchemy import func, select

    from conveyor.settings import Settings
    from conveyor.store import Store
    from conveyor.store._metrics import metrics
    from conveyor.store._runs import runs
    from conveyor.store._experiments import experiments

    store = Store.from_settings(Settings.load(folder, env={}), create=False)
    try:
        with store.read() as conn:
            exp = conn.execute(select(experiments.c.id).where(experiments.c.name == experiment)).scalar_one()
            n_runs = conn.execute(select(func.count()).select_from(runs).where(runs.c.experiment_id == exp)).scalar_one()
            n_points = conn.execute(select(func.count()).select_from(metrics).join(runs, runs.c.id == metrics.c.run_id)
                                    .where(runs.c.experiment_id == exp)).scalar_one()
    finally:
        store.close()
    return int(n_runs), int(n_points)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--mlflow-points", type=int, default=None, help="default: --points")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=50, help="runs per concurrent client (the issue's figure: 1000)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--mlflow-workers", type=int, default=None, help="default: mlflow server's own default")
    args = parser.parse_args()
    mlflow_points = args.mlflow_points or args.points

    base = WORK / "server_logging"
    shutil.rmtree(base, ignore_errors=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_", "AWS_"))}

    # 1. one client, --points log_metric calls
    proc, url = _conveyor_server(base / "conveyor", clean)
    laptop = base / "laptop"
    laptop.mkdir()
    client_env = {**clean, "PYTHONPATH": str(SRC), "CONVEYOR_SERVER_URL": url}
    try:
        c = _result(_client(sys.executable, CONVEYOR_CLIENT.format(points=args.points), laptop, client_env))
    finally:
        stop(proc)
    _, c_points = _count_conveyor(base / "conveyor", "bench")
    rows = [("conveyor.log_metric via conveyor server", f"{args.points:,}", f"{c['total']:.2f} s",
             f"{c['total'] / args.points * 1e6:.1f} µs", f"{c_points:,}")]
    if not args.skip_mlflow:
        mlflow_python = peer_python("mlflow-server", ["mlflow"])
        folder = base / "mlflow"
        folder.mkdir()
        port = free_port()
        murl = f"http://127.0.0.1:{port}"
        env = {**clean, "PATH": f"{mlflow_python.parent}{os.pathsep}{clean.get('PATH', '')}"}
        cmd = [str(mlflow_python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "mlartifacts")]
        if args.mlflow_workers:
            cmd += ["--workers", str(args.mlflow_workers)]
        mproc, _ = start(cmd, folder, env, murl)
        try:
            m = _result(_client(mlflow_python, MLFLOW_CLIENT.format(points=mlflow_points), folder,
                                {**env, "MLFLOW_TRACKING_URI": murl}))
        finally:
            stop(mproc)
        import sqlite3

        with sqlite3.connect(folder / "mlflow.db") as db:
            m_points = db.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", (m["run"],)).fetchone()[0]
        rows.append(("mlflow.log_metric via mlflow server", f"{mlflow_points:,}", f"{m['total']:.2f} s",
                     f"{m['total'] / mlflow_points * 1e6:.1f} µs", f"{m_points:,}"))
    print(table(rows, ("", "calls", "until every point is stored", "per call", "points stored")))
    if not args.skip_mlflow:
        ratio = (m["total"] / mlflow_points) / (c["total"] / args.points)
        same = "" if mlflow_points == args.points else f" (per call: mlflow timed on {mlflow_points:,} calls)"
        print(f"\nmlflow / conveyor, time per log_metric: {ratio:,.0f}x{same}\n")

    # 2. concurrent clients
    proc, url = _conveyor_server(base / "concurrent", clean)
    client_env = {**clean, "PYTHONPATH": str(SRC), "CONVEYOR_SERVER_URL": url,
                  "CONVEYOR_TRACKING_CAPTURE_PACKAGES": "false", "CONVEYOR_TRACKING_CAPTURE_GIT": "false"}
    try:
        procs = [_client(sys.executable, CONCURRENT_CLIENT.format(runs=args.runs, client=i), laptop, client_env)
                 for i in range(args.clients)]
        for p in procs:  # started up (imports, settings, HTTP client)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr and p.stderr.read()
        started = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            _result(p)
        wall = time.perf_counter() - started
    finally:
        stop(proc)
    n_runs, n_points = _count_conveyor(base / "concurrent", "concurrent")
    expected_runs, expected_points = args.clients * args.runs, args.clients * args.runs * 10
    print(table([(f"{args.clients} clients x {args.runs} runs x 10 metrics", f"{wall:.1f} s",
                  f"{expected_runs / wall:,.0f}", f"{expected_points / wall:,.0f}",
                  f"{n_runs:,}/{expected_runs:,}", f"{n_points:,}/{expected_points:,}")],
                ("", "wall", "runs/s", "points/s", "runs stored", "points stored")))
    lost = expected_points - n_points
    print("no point lost" if lost == 0 and n_runs == expected_runs else f"LOST {lost} point(s)")


if __name__ == "__main__":
    main()
