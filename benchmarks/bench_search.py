"""Search from a fresh process: `conveyor runs list -f …` vs `mlflow.search_runs`, 1,000 runs.

    python benchmarks/bench_search.py [--repeat 5] [--runs 1000] [--skip-mlflow]

What a user waits for when they type one search: a new process starts, imports, opens the
store, parses the filter, queries and prints. Both sides hold the same 1,000 runs (10
params, 10 metrics each) in a SQLite file, made before timing; each timed search is a new
process, measured from outside (spawn to exit); the table shows medians and the ratio
MLflow / conveyor. conveyor prints JSON (`--json`); MLflow returns its DataFrame.
MLflow is installed into its own virtualenv (benchmarks/.venvs/mlflow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, table  # noqa: E402

FILTER = "metrics.m0 > 0.5 and params.p1 = '3'"

CONVEYOR_SETUP = """
import random, sys, uuid
from conveyor.settings import Settings
from conveyor.tracking import Tracker
from conveyor.store import runs, params, latest_metrics, metrics
n = int(sys.argv[1])
tracker = Tracker.from_settings(Settings.load())
exp = tracker._experiment_id("bench")
ids = [uuid.uuid4().hex for _ in range(n)]
values = {}
for number, i in enumerate(ids):  # the same values, run by run, as MLflow's setup below
    rng = random.Random(number)
    values[i] = ([rng.random() for _ in range(10)], [str(rng.randint(0, 9)) for _ in range(10)])
with tracker.store.write() as conn:
    conn.execute(runs.insert(), [dict(id=i, experiment_id=exp, name=i[:8], status="FINISHED",
        start_time=1_700_000_000_000 + k, user="u", host="h") for k, i in enumerate(ids)])
    conn.execute(params.insert(), [dict(run_id=i, key=f"p{k}", value=values[i][1][k]) for i in ids for k in range(10)])
    rows = [dict(run_id=i, key=f"m{k}", value=values[i][0][k], step=0, timestamp=1) for i in ids for k in range(10)]
    conn.execute(latest_metrics.insert(), rows)
    conn.execute(metrics.insert(), rows)
tracker.close()
"""

MLFLOW_SETUP = """
import random, sys, time
import mlflow
from mlflow.entities import Metric, Param
mlflow.set_tracking_uri("sqlite:///mlflow.db")
n = int(sys.argv[1])
client = mlflow.MlflowClient()
exp = client.create_experiment("bench")
for number in range(n):
    rng = random.Random(number)
    ms, ps = [rng.random() for _ in range(10)], [str(rng.randint(0, 9)) for _ in range(10)]
    run = client.create_run(exp)
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id,
                     metrics=[Metric(f"m{k}", ms[k], now, 0) for k in range(10)],
                     params=[Param(f"p{k}", ps[k]) for k in range(10)])
    client.set_terminated(run.info.run_id)
"""

MLFLOW_SEARCH = """
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
frame = mlflow.search_runs(experiment_names=["bench"], filter_string=%r, max_results=1000)
print(len(frame))
""" % FILTER


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


def _wall(argv: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed:\n{done.stderr[-3000:]}")
    return took, done.stdout


def _conveyor_cli() -> list[str]:
    script = Path(sys.executable).with_name("conveyor")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "conveyor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=WORK))
    try:
        ours_dir, theirs_dir = folder / "conveyor", folder / "mlflow"
        ours_dir.mkdir()
        theirs_dir.mkdir()
        (ours_dir / "conveyor.toml").write_text("[tracking]\ncapture_packages = false\n")
        subprocess.run([*_conveyor_cli(), "init"], cwd=ours_dir, env=_env(), check=True, capture_output=True)
        subprocess.run([sys.executable, "-c", textwrap.dedent(CONVEYOR_SETUP), str(args.runs)], cwd=ours_dir,
                       env=_env(), check=True)
        search = [*_conveyor_cli(), "runs", "list", "-e", "bench", "-f", FILTER, "-n", str(args.runs), "--json"]
        _wall(search, ours_dir)  # warm the file-system cache and bytecode, as for MLflow below
        ours, found = [], 0
        for _ in range(args.repeat):
            took, out = _wall(search, ours_dir)
            ours.append(took)
            found = len(json.loads(out))
        theirs: list[float] = []
        theirs_found = None
        if not args.skip_mlflow:
            mlflow = peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas"])
            subprocess.run([str(mlflow), "-c", textwrap.dedent(MLFLOW_SETUP), str(args.runs)], cwd=theirs_dir,
                           env=_env(), check=True, capture_output=True)
            _wall([str(mlflow), "-c", MLFLOW_SEARCH], theirs_dir)
            for _ in range(args.repeat):
                took, out = _wall([str(mlflow), "-c", MLFLOW_SEARCH], theirs_dir)
                theirs.append(took)
                theirs_found = int(out.strip().splitlines()[-1])
        ratio = f"{median(theirs) / median(ours):.1f}×" if theirs else "-"
        rows = [(
            f"one filtered search in a fresh process, {args.runs:,} runs ({found} match"
            + (f"; MLflow: {theirs_found}" if theirs_found is not None else "") + ")",
            f"{median(ours):.3f} s",
            f"{median(theirs):.3f} s" if theirs else "-",
            ratio,
            "≥ 3×",
        )]
        print(table(rows, ("work", "conveyor", "MLflow", "MLflow / conveyor", "target")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
