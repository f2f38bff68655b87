"""Tracking: conveyor vs MLflow on the same work, both on a SQLite file, in one run.

    python benchmarks/bench_tracking.py [--repeat 3] [--points 10000] [--runs 1000] [--skip-mlflow]

MLflow is installed into its own virtualenv (benchmarks/.venvs/mlflow). Each measurement
runs in a fresh process in a fresh folder; the table shows medians and the ratio
MLflow / conveyor.

Like for like: in every process both sides first import their package and create their
database and experiment (MLflow runs its migrations then), untimed; the clock covers only
the work. MLflow is shown three ways for the same metric points: per-call ``log_metric``
(what users write), ``MlflowClient.log_batch`` in batches of 1,000 (its documented limit
and best practice), and its asynchronous mode (``synchronous=False`` with
``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` set). Every timed region ends with the run's end,
which on both sides waits until every point is written. What each makes durable when a
call returns is printed under the table. ``import`` is timed together with the first
attribute accesses a user makes (``start_run``, ``log_metric``), since conveyor resolves
its names lazily.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

# -- untimed set-up of each process: import, create the database and the experiment -------------
CONVEYOR_SETUP = """
import time, json
import conveyor
with conveyor.start_run(experiment="bench"):  # creates the database (schema) and the experiment
    pass
"""

MLFLOW_SETUP = """
import time, json, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("bench")  # creates the database (runs MLflow's migrations) and the experiment
with mlflow.start_run():
    pass
"""

CONVEYOR_METRICS = CONVEYOR_SETUP + """
t0 = time.perf_counter()
with conveyor.start_run(experiment="bench"):
    for i in range({points}):
        conveyor.log_metric("loss", 1.0 / (i + 1), step=i)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

MLFLOW_METRICS = MLFLOW_SETUP + """
t0 = time.perf_counter()
with mlflow.start_run():
    for i in range({points}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

MLFLOW_METRICS_BATCH = MLFLOW_SETUP + """
t0 = time.perf_counter()
client = MlflowClient()
with mlflow.start_run() as run:
    now = int(time.time() * 1000)
    for start in range(0, {points}, 1000):  # 1,000 metrics per log_batch: MLflow's limit
        batch = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(start, min(start + 1000, {points}))]
        client.log_batch(run.info.run_id, metrics=batch)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

MLFLOW_METRICS_ASYNC = MLFLOW_SETUP + """
t0 = time.perf_counter()
with mlflow.start_run():  # the run's end waits for the async queue to drain
    for i in range({points}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=False)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

CONVEYOR_RUNS = CONVEYOR_SETUP + """
t0 = time.perf_counter()
for r in range({runs}):
    with conveyor.start_run(experiment="bench"):
        conveyor.log_params({{f"p{{i}}": r * i for i in range(10)}})
        conveyor.log_metrics({{f"m{{i}}": (r * 7 + i) % 100 / 100 for i in range(10)}})
made = time.perf_counter() - t0
t1 = time.perf_counter()
frame = conveyor.search_runs("bench", filter="metrics.m0 > 0.5", order_by=["metrics.m1 desc"])
first = time.perf_counter() - t1
t2 = time.perf_counter()
frame = conveyor.search_runs("bench", filter="metrics.m0 > 0.5", order_by=["metrics.m1 desc"])
second = time.perf_counter() - t2
print(json.dumps({{"runs": made, "search_first": first, "search": second, "rows": len(frame)}}))
"""

MLFLOW_RUNS = MLFLOW_SETUP + """
t0 = time.perf_counter()
for r in range({runs}):
    with mlflow.start_run():
        mlflow.log_params({{f"p{{i}}": r * i for i in range(10)}})
        mlflow.log_metrics({{f"m{{i}}": (r * 7 + i) % 100 / 100 for i in range(10)}})
made = time.perf_counter() - t0
t1 = time.perf_counter()
frame = mlflow.search_runs(experiment_names=["bench"], filter_string="metrics.m0 > 0.5", order_by=["metrics.m1 DESC"])
first = time.perf_counter() - t1
t2 = time.perf_counter()
frame = mlflow.search_runs(experiment_names=["bench"], filter_string="metrics.m0 > 0.5", order_by=["metrics.m1 DESC"])
second = time.perf_counter() - t2
print(json.dumps({{"runs": made, "search_first": first, "search": second, "rows": len(frame)}}))
"""

# 100,000 runs are inserted in bulk through the store (setup, not measured), then searched
# through the public API with a metric filter and an order, returning the top 100.
CONVEYOR_BIG_SEARCH = """
import time, json, uuid, random
import conveyor
from conveyor.settings import Settings
from conveyor.tracking import Tracker
from conveyor.store import runs, params, latest_metrics, metrics
tracker = Tracker.from_settings(Settings.load())
exp = tracker._experiment_id("big")
rng = random.Random(0)
with tracker.store.write() as conn:
    for chunk in range(20):
        ids = [uuid.uuid4().hex for _ in range(5000)]
        conn.execute(runs.insert(), [dict(id=i, experiment_id=exp, name=i[:8], status="FINISHED",
            start_time=1_700_000_000_000 + n, user="u", host="h") for n, i in enumerate(ids)])
        conn.execute(params.insert(), [dict(run_id=i, key=f"p{k}", value=str(rng.randint(0, 9))) for i in ids for k in range(10)])
        rows = [dict(run_id=i, key=f"m{k}", value=rng.random(), step=0, timestamp=1) for i in ids for k in range(10)]
        conn.execute(latest_metrics.insert(), rows)
        conn.execute(metrics.insert(), rows)
conn = None
tracker.store.engine.dispose()
times = []
for _ in range(5):
    t = time.perf_counter()
    frame = conveyor.search_runs("big", filter="metrics.m0 > 0.5 and params.p1 = '3'", order_by=["metrics.m1 desc"], max_results=100)
    times.append(time.perf_counter() - t)
t = time.perf_counter()
everything = conveyor.search_runs("big", filter="metrics.m0 > 0.99", order_by=["metrics.m1 desc"], output="runs")
all_matching = time.perf_counter() - t
print(json.dumps({"search_top100": sorted(times)[2], "search_top100_first": times[0], "rows": len(frame),
                  "search_all_matching": all_matching, "all_rows": len(everything)}))
"""

IMPORT = """
import time, json
t = time.perf_counter()
import {module}
imported = time.perf_counter() - t
{module}.start_run, {module}.log_metric  # the first names a user touches
print(json.dumps({{"import": imported, "seconds": time.perf_counter() - t}}))
"""

#: What a returned call has made durable, per way of logging (printed under the table).
DURABILITY = """What is durable when the call returns (SQLite file on both sides):
- conveyor log_metric: appended to an in-memory buffer; a background thread commits batches
  every flush_interval (1 s) or 5,000 points, in WAL mode with synchronous=NORMAL as of this
  run (a commit survives a process crash; a power cut may roll back the newest commits). A
  SIGKILL loses at most the last second of points; run end, flush(), SIGTERM and a normal
  exit write everything.
- MLflow log_metric (synchronous): one committed transaction per call; MLflow sets no
  journal or synchronous PRAGMA, so SQLite's defaults apply (rollback journal,
  synchronous=FULL): durable on return, power loss included - the slowest way.
- MLflow log_batch: one committed transaction per batch of up to 1,000 points (durable on
  return, as above).
- MLflow asynchronous: the call returns at once; points wait in an in-process queue (and
  the buffering window) and are lost if the process dies before they are written; run end
  waits for the queue."""


def measure(python: Path | str, code: str, repeat: int, env: dict[str, str] | None = None) -> list[dict[str, float]]:
    results = []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(dir=WORK))
        (folder / "conveyor.toml").write_text("[tracking]\ncapture_packages = true\n")
        try:
            results.append(run_timed(python, code, folder, env))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=10_000, help="metric points logged into one run")
    parser.add_argument("--runs", type=int, default=1000, help="runs made for the runs/search rows")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-big", action="store_true", help="skip the 100,000-run search (conveyor only)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    mlflow = None if args.skip_mlflow else peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas", "pyarrow"])
    me = sys.executable
    rows: list[tuple[str, ...]] = []
    points, runs = f"{args.points:,}", f"{args.runs:,}"

    def add(work: str, ours: float | None, theirs: float | None, target: str, unit: str = "s") -> None:
        ratio = f"{theirs / ours:.1f}×" if theirs and ours else "-"
        rows.append((work, f"{ours:.3f} {unit}" if ours is not None else "-",
                     f"{theirs:.3f} {unit}" if theirs else "-", ratio, target))
        print(rows[-1], flush=True)

    def seconds(results: list[dict[str, float]] | None, key: str = "seconds") -> float | None:
        return median([r[key] for r in results]) if results else None

    fmt = {"points": args.points, "runs": args.runs}
    ours = seconds(measure(me, CONVEYOR_METRICS.format(**fmt), args.repeat))
    if mlflow:
        add(f"{points} points, one run: MLflow per-call log_metric (sync)", ours,
            seconds(measure(mlflow, MLFLOW_METRICS.format(**fmt), args.repeat)), "≥ 20×")
        add(f"{points} points, one run: MLflow log_batch, 1,000 per call", ours,
            seconds(measure(mlflow, MLFLOW_METRICS_BATCH.format(**fmt), args.repeat)), "")
        for buffering in (None, "1"):  # unset: one queued batch per call; 1 s: calls merged per second
            env = {"MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": buffering} if buffering else {}
            label = f"buffering {buffering} s" if buffering else "buffering unset"
            add(f"{points} points, one run: MLflow async log_metric, {label}", ours,
                seconds(measure(mlflow, MLFLOW_METRICS_ASYNC.format(**fmt), args.repeat, env)), "")
    else:
        add(f"{points} points, one run (conveyor per-call log_metric)", ours, None, "")

    ours_runs = measure(me, CONVEYOR_RUNS.format(**fmt), args.repeat)
    theirs_runs = measure(mlflow, MLFLOW_RUNS.format(**fmt), args.repeat) if mlflow else None
    add(f"{runs} runs × (10 params + 10 metrics)", seconds(ours_runs, "runs"), seconds(theirs_runs, "runs"), "≥ 5×")
    add(f"search_runs, metric filter + order, {runs} runs", seconds(ours_runs, "search"),
        seconds(theirs_runs, "search"), "≥ 5×")
    add("  the same, first call in the process", seconds(ours_runs, "search_first"),
        seconds(theirs_runs, "search_first"), "")

    if not args.skip_big:
        big = measure(me, CONVEYOR_BIG_SEARCH, 1)[0]
        add("search_runs over 100,000 runs (filter + order, top 100)", big["search_top100"], None, "< 0.5 s")
        add("  the same, first call in the process", big["search_top100_first"], None, "")
        add(f"  all {int(big['all_rows'])} matching runs of 100,000 as Run objects", big["search_all_matching"], None, "")

    ours_import = measure(me, IMPORT.format(module="conveyor"), max(args.repeat, 5))
    theirs_import = measure(mlflow, IMPORT.format(module="mlflow"), max(args.repeat, 5)) if mlflow else None
    add("import + first access (start_run, log_metric)", seconds(ours_import), seconds(theirs_import), "≤ 0.3 s")
    add("  the bare import statement", seconds(ours_import, "import"), seconds(theirs_import, "import"), "")

    print()
    print(table(rows, ("work", "conveyor", "MLflow", "MLflow / conveyor", "target")))
    print()
    print(DURABILITY)


if __name__ == "__main__":
    main()
