"""``conveyor server`` vs ``mlflow server``: process start until ``/health`` answers 200.

Per server and metadata store (SQLite file; PostgreSQL with ``--postgres URL``): a *cold*
start (the first start in a fresh project: conveyor's stores made by ``conveyor init``
beforehand, MLflow creating its tables on its own as it does) and ``--repeats`` *warm*
starts (the same project again). For each: wall time from ``Popen`` until the first 200 of
``/health``, the server process's CPU time at that moment (user + system of the whole
process tree: a load-independent view on a shared machine), and the resident memory of the
process tree ``--settle`` seconds later (MLflow keeps starting helpers after ``/health``).
Medians of the warm starts; ratios mlflow / conveyor. MLflow runs from its own virtualenv
(benchmarks/.venvs/mlflow-server, created on first use, psycopg2 added for PostgreSQL).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_server_start.py [--repeats 3]
[--postgres postgresql://postgres@127.0.0.1:5432/test] [--no-mlflow] [--mlflow-workers N] [--src DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, table  # noqa: E402
from bench_server import free_port, stop, tree_rss_mib  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


def tree_cpu_s(pid: int) -> float:
    total = 0.0
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def start(cmd: list[str], cwd: Path, env: dict[str, str], settle: float, timeout: float = 300) -> dict[str, float]:
    """One start: wall seconds to the first 200 of /health, CPU seconds then, RSS after ``settle``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    cmd = [part.replace("{port}", str(port)) for part in cmd]
    log = (cwd / "server.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited: {(cwd / 'server.log').read_text()[-2000:]}")
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{cmd} not ready in {timeout} s")
                try:
                    if client.get(url).status_code == 200:
                        ready = time.perf_counter() - started
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        cpu = tree_cpu_s(proc.pid)
        time.sleep(settle)
        rss = tree_rss_mib(proc.pid)
    finally:
        stop(proc)
        log.close()
    return {"ready": ready, "cpu": cpu, "rss": rss}


def fresh_database(admin: str) -> tuple[str, str]:
    """A new empty PostgreSQL database: (its URL for SQLAlchemy's psycopg 3 driver, its name)."""
    import psycopg

    name = f"bench_start_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}", name


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def conveyor_side(folder: Path, env: dict[str, str], db: str | None, src: Path) -> list[str]:
    env["PYTHONPATH"] = str(src)
    if db is not None:
        env["CONVEYOR_STORE_METADATA_URL"] = db.replace("postgresql://", "postgresql+psycopg://", 1)
    subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=folder, env=env, check=True, capture_output=True)
    return [sys.executable, "-m", "conveyor", "server", "--port", "{port}", "--log-level", "warning"]


def mlflow_side(folder: Path, env: dict[str, str], db: str | None, python: Path, workers: int | None) -> list[str]:
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; name the driver mlflow's venv has
    backend = db.replace("postgresql://", "postgresql+psycopg2://", 1) if db else f"sqlite:///{folder / 'mlflow.db'}"
    cmd = [str(python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", "{port}",
           "--backend-store-uri", backend, "--artifacts-destination", str(folder / "mlartifacts")]
    return cmd + (["--workers", str(workers)] if workers else [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3, help="warm starts per server and store")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--postgres", default=None, help="admin URL; a fresh database per side is made and dropped")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--mlflow-workers", type=int, default=None, help="default: mlflow server's own default")
    parser.add_argument("--src", type=Path, default=SRC, help="conveyor sources to time (another checkout's src "
                        "for a before/after comparison); default: this checkout's")
    args = parser.parse_args()

    mlflow_python = None
    if not args.no_mlflow:
        mlflow_python = peer_python("mlflow-server", ["mlflow"])
        if args.postgres and subprocess.run([str(mlflow_python), "-c", "import psycopg2"],
                                            capture_output=True).returncode != 0:
            subprocess.run([str(mlflow_python), "-m", "pip", "install", "-q", "psycopg2-binary"], check=True)
    base = WORK / f"server-start-{os.getpid()}"  # two runs at once (a before/after pair) never share folders
    shutil.rmtree(base, ignore_errors=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    stores = ["sqlite"] + (["postgresql"] if args.postgres else [])
    sides = ["conveyor"] + (["mlflow"] if mlflow_python is not None else [])
    results: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for store in stores:
        for side in sides:
            folder = base / f"{side}-{store}"
            folder.mkdir(parents=True)
            env = dict(clean)
            db, dbname = fresh_database(args.postgres) if store == "postgresql" else (None, None)
            try:
                if side == "conveyor":
                    cmd = conveyor_side(folder, env, db, args.src)
                else:
                    assert mlflow_python is not None
                    cmd = mlflow_side(folder, env, db, mlflow_python, args.mlflow_workers)
                cold = start(cmd, folder, env, args.settle)
                warm = [start(cmd, folder, env, args.settle) for _ in range(args.repeats)]
            finally:
                if dbname is not None:
                    drop_database(args.postgres, dbname)
            results[(side, store)] = {"cold": cold, "warm": {k: median([w[k] for w in warm]) for k in cold}}
            print(f"{side} over {store}: cold {cold['ready']:.2f} s, warm {results[(side, store)]['warm']['ready']:.2f} s",
                  file=sys.stderr)

    shutil.rmtree(base, ignore_errors=True)
    rows = []
    for store in stores:
        c = results[("conveyor", store)]
        m = results.get(("mlflow", store))
        for when in ("cold", "warm"):
            for key, label, unit in (("ready", "start to /health", "s"), ("cpu", "CPU by then", "s"),
                                     ("rss", "RSS after start, whole tree", "MiB")):
                cv = c[when][key]
                mv = m[when][key] if m else None
                fmt = (lambda v: f"{v:.0f} MiB") if unit == "MiB" else (lambda v: f"{v:.2f} s")
                rows.append((f"{store}, {when}: {label}", fmt(cv), fmt(mv) if mv is not None else "-",
                             f"{mv / cv:.1f}x" if mv is not None and cv else ""))
    workers = args.mlflow_workers or "default"
    print(f"start to ready; warm = median of {args.repeats}; mlflow server workers: {workers}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(table(rows, ("", "conveyor server", "mlflow server", "mlflow / conveyor")))


if __name__ == "__main__":
    main()
