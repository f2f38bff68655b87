"""Tracking: conveyor vs MLflow on the same work, both on a SQLite file, in one run.

    python benchmarks/bench_tracking.py [--repeat 3] [--skip-mlflow]

MLflow is installed into its own virtualenv (benchmarks/.venvs/mlflow). Each measurement
runs in a fresh process; the table shows medians and the ratio MLflow / conveyor.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

CONVEYOR_METRICS = """
import time, json
t0 = time.perf_counter()
import conveyor
with conveyor.start_run(experiment="bench"):
    for i in range(10_000):
        conveyor.log_metric("loss", 1.0 / (i + 1), step=i)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

MLFLOW_METRICS = """
import time, json
t0 = time.perf_counter()
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
with mlflow.start_run():
    for i in range(10_000):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

CONVEYOR_RUNS = """
import time, json
t0 = time.perf_counter()
import conveyor
for r in range(1000):
    with conveyor.start_run(experiment="bench"):
        conveyor.log_params({f"p{i}": r * i for i in range(10)})
        conveyor.log_metrics({f"m{i}": (r * 7 + i) % 100 / 100 for i in range(10)})
made = time.perf_counter() - t0
t1 = time.perf_counter()
frame = conveyor.search_runs("bench", filter="metrics.m0 > 0.5", order_by=["metrics.m1 desc"])
first = time.perf_counter() - t1
t2 = time.perf_counter()
frame = conveyor.search_runs("bench", filter="metrics.m0 > 0.5", order_by=["metrics.m1 desc"])
second = time.perf_counter() - t2
print(json.dumps({"runs": made, "search_first": first, "search": second, "rows": len(frame)}))
"""

MLFLOW_RUNS = """
import time, json
t0 = time.perf_counter()
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
mlflow.set_experiment("bench")
for r in range(1000):
    with mlflow.start_run():
        mlflow.log_params({f"p{i}": r * i for i in range(10)})
        mlflow.log_metrics({f"m{i}": (r * 7 + i) % 100 / 100 for i in range(10)})
made = time.perf_counter() - t0
t1 = time.perf_counter()
frame = mlflow.search_runs(experiment_names=["bench"], filter_string="metrics.m0 > 0.5", order_by=["metrics.m1 DESC"])
first = time.perf_counter() - t1
t2 = time.perf_counter()
frame = mlflow.search_runs(experiment_names=["bench"], filter_string="metrics.m0 > 0.5", order_by=["metrics.m1 DESC"])
second = time.perf_counter() - t2
print(json.dumps({"runs": made, "search_first": first, "search": second, "rows": len(frame)}))
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
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    mlflow = None if args.skip_mlflow else peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas"])
    me = sys.executable
    rows: list[tuple[str, ...]] = []

    def add(work: str, ours: float, theirs: float | None, target: str, unit: str = "s") -> None:
        ratio = f"{theirs / ours:.1f}×" if theirs else "-"
        rows.append((work, f"{ours:.3f} {unit}", f"{theirs:.3f} {unit}" if theirs else "-", ratio, target))
        print(rows[-1], flush=True)

    ours = measure(me, CONVEYOR_METRICS, args.repeat)
    theirs = measure(mlflow, MLFLOW_METRICS, args.repeat) if mlflow else None
    add("10,000 log_metric, one run (run end included)", median([r["seconds"] for r in ours]),
        median([r["seconds"] for r in theirs]) if theirs else None, "≥ 20×")

    ours = measure(me, CONVEYOR_RUNS, args.repeat)
    theirs = measure(mlflow, MLFLOW_RUNS, args.repeat) if mlflow else None
    add("1,000 runs × (10 params + 10 metrics)", median([r["runs"] for r in ours]),
        median([r["runs"] for r in theirs]) if theirs else None, "≥ 5×")
    add("search_runs, metric filter + order, 1,000 runs", median([r["search"] for r in ours]),
        median([r["search"] for r in theirs]) if theirs else None, "≥ 5×")
    add("  the same, first call in the process", median([r["search_first"] for r in ours]),
        median([r["search_first"] for r in theirs]) if theirs else None, "")

    big = measure(me, CONVEYOR_BIG_SEARCH, 1)[0]
    add("search_runs over 100,000 runs (filter + order, top 100)", big["search_top100"], None, "< 0.5 s")
    add("  the same, first call in the process", big["search_top100_first"], None, "")
    add(f"  all {int(big['all_rows'])} matching runs of 100,000 as Run objects", big["search_all_matching"], None, "")

    ours = measure(me, IMPORT.format(module="conveyor"), max(args.repeat, 5))
    theirs = measure(mlflow, IMPORT.format(module="mlflow"), max(args.repeat, 5)) if mlflow else None
    add("import", median([r["seconds"] for r in ours]),
        median([r["seconds"] for r in theirs]) if theirs else None, "≤ 0.3 s")

    print()
    print(table(rows, ("work", "conveyor", "MLflow", "MLflow / conveyor", "target")))


if __name__ == "__main__":
    main()
