"""The unmodified mlflow client against ``conveyor server`` vs the same client against
``mlflow server``: same calls, same machine, SQLite file and local artifacts on both sides.

Per server: start-to-ready time (process start until ``/health`` answers), resident memory
of the whole process tree after start (after ``--settle`` seconds, since ``mlflow server``
keeps starting helpers after ``/health``), then one client process (MLflow's own client,
from the ``mlflow`` virtualenv, benchmarks/.venvs/mlflow-server, created on first use) doing
create experiment + run, ``--metrics`` ``mlflow.log_metric`` calls one by one, end run and
``search_runs`` with a filter and order, ``--repeats`` times; medians and ratios printed.
The client's own CPU time per ``log_metric`` is printed too: it is the floor that no server
can remove (a server that answered in no time would still leave it).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_server.py [--metrics 100] [--repeats 3]
[--mlflow-workers N] [--settle 5]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"

CLIENT = """
import json, time, mlflow
from mlflow import MlflowClient
t0 = time.perf_counter()
mlflow.set_experiment("bench-{tag}")
with mlflow.start_run() as run:
    t1 = time.perf_counter()
    c1 = time.process_time()
    for i in range({metrics}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    t2 = time.perf_counter()
    c2 = time.process_time()
t3 = time.perf_counter()
found = mlflow.search_runs(filter_string="metrics.loss < 0.5", order_by=["metrics.loss ASC"], output_format="list")
t4 = time.perf_counter()
assert any(r.info.run_id == run.info.run_id for r in found)
assert len(MlflowClient().get_metric_history(run.info.run_id, "loss")) == {metrics}
print(json.dumps({{"create": t1 - t0, "log": t2 - t1, "log_cpu": c2 - c1, "end": t3 - t2, "search": t4 - t3,
                  "total": t4 - t0}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def start(cmd: list[str], cwd: Path, env: dict[str, str], url: str, timeout: float = 180) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=(cwd / "server.log").open("wb"))
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {(cwd / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{cmd} not ready in {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlflow-workers", type=int, default=None, help="default: mlflow server's own default")
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()

    mlflow_python = peer_python("mlflow-server", ["mlflow"])
    base = WORK / "server"
    shutil.rmtree(base, ignore_errors=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    results: dict[str, dict[str, float]] = {}

    for name in ("conveyor", "mlflow"):
        folder = base / name
        folder.mkdir(parents=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(clean)
        if name == "conveyor":
            env["PYTHONPATH"] = str(SRC)
            subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=folder, env=env, check=True,
                           capture_output=True)
            cmd = [sys.executable, "-m", "conveyor", "server", "--port", str(port), "--log-level", "warning"]
        else:
            env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"
            cmd = [str(mlflow_python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                   "--artifacts-destination", str(folder / "mlartifacts")]
            if args.mlflow_workers:
                cmd += ["--workers", str(args.mlflow_workers)]
        proc, ready = start(cmd, folder, env, url)
        try:
            time.sleep(args.settle)
            rss = tree_rss_mib(proc.pid)
            runs = [run_timed(mlflow_python, CLIENT.format(tag=i, metrics=args.metrics), folder,
                              {"MLFLOW_TRACKING_URI": url}) for i in range(args.repeats)]
        finally:
            stop(proc)
        results[name] = {"ready": ready, "rss": rss, **{k: median([r[k] for r in runs]) for k in runs[0]}}

    c, m = results["conveyor"], results["mlflow"]
    rows = [
        ("server start to /health", f"{c['ready']:.2f} s", f"{m['ready']:.2f} s", f"{m['ready'] / c['ready']:.1f}x"),
        (f"RSS after start (+{args.settle:.0f} s), whole tree", f"{c['rss']:.0f} MiB", f"{m['rss']:.0f} MiB",
         f"{m['rss'] / c['rss']:.1f}x"),
        ("set_experiment + start_run", f"{c['create'] * 1000:.0f} ms", f"{m['create'] * 1000:.0f} ms",
         f"{m['create'] / c['create']:.1f}x"),
        (f"{args.metrics} x log_metric", f"{c['log'] * 1000:.0f} ms", f"{m['log'] * 1000:.0f} ms",
         f"{m['log'] / c['log']:.1f}x"),
        ("per log_metric", f"{c['log'] / args.metrics * 1000:.2f} ms", f"{m['log'] / args.metrics * 1000:.2f} ms", ""),
        ("  of which the client's own CPU", f"{c['log_cpu'] / args.metrics * 1000:.2f} ms",
         f"{m['log_cpu'] / args.metrics * 1000:.2f} ms", ""),
        ("search_runs (filter + order)", f"{c['search'] * 1000:.0f} ms", f"{m['search'] * 1000:.0f} ms",
         f"{m['search'] / c['search']:.1f}x"),
        ("all client calls", f"{c['total'] * 1000:.0f} ms", f"{m['total'] * 1000:.0f} ms",
         f"{m['total'] / c['total']:.1f}x"),
    ]
    workers = args.mlflow_workers or "default"
    print(f"mlflow client against each server; medians of {args.repeats} client processes; mlflow server workers: {workers}")
    print(table(rows, ("", "conveyor server", "mlflow server", "mlflow / conveyor")))


if __name__ == "__main__":
    main()
