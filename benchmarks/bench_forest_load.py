"""Benchmark: cold load + first predict of a random forest — conveyor vs MLflow.

A RandomForestClassifier (``--trees``, wine data) is saved by each tool in its own
environment: a conveyor package (skops, every reference checked by the trust policy and the
trees' node arrays bounds-checked before use) and an MLflow model (MLflow 3's default skops
format, with ``skops_trusted_types=["sklearn.tree._tree.Tree"]``). Each run is a fresh process that imports the
library, loads the package and predicts one row; the runs alternate between the tools and
the medians are compared. "in-process" is measured from before the first import.
MLflow lives in its own virtualenv under benchmarks/.venvs/mlflow (created on first use).

Run: ``.venv/bin/python benchmarks/bench_forest_load.py [--runs 7] [--trees 100]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

HERE = WORK / "bench_forest_load"

TRAIN = """
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
X, y = load_wine(return_X_y=True, as_frame=True)
X.columns = [c.replace("/", "_") for c in X.columns]
model = RandomForestClassifier(n_estimators=TREES, random_state=0).fit(X, y)
"""

CONVEYOR_SAVE = TRAIN + """
import conveyor.models
conveyor.models.save(model, "conveyor-pkg", input_example=X.iloc[:5], overwrite=True)
print("{}")
"""

MLFLOW_SAVE = TRAIN + """
import mlflow.sklearn, shutil
shutil.rmtree("mlflow-pkg", ignore_errors=True)
# MLflow 3.x saves scikit-learn models with skops by default and asks for the Tree type to be trusted
mlflow.sklearn.save_model(model, "mlflow-pkg", input_example=X.iloc[:5], skops_trusted_types=["sklearn.tree._tree.Tree"])
print("{}")
"""

CONVEYOR_COLD = """
import time
t0 = time.perf_counter()
import json
import conveyor.models
model = conveyor.models.load("conveyor-pkg")
t1 = time.perf_counter()
out = model.predict([ROW])
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "first_predict": t2 - t1, "total": t2 - t0, "y": int(out[0])}))
"""

MLFLOW_COLD = """
import time
t0 = time.perf_counter()
import json
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model("mlflow-pkg")
t1 = time.perf_counter()
out = model.predict(pd.DataFrame([ROW]))
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "first_predict": t2 - t1, "total": t2 - t0, "y": int(out[0])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    trees = str(args.trees)
    run_timed(sys.executable, CONVEYOR_SAVE.replace("TREES", trees), HERE)
    mlflow_py = peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas"])
    run_timed(mlflow_py, MLFLOW_SAVE.replace("TREES", trees), HERE,
              env={"MLFLOW_TRACKING_URI": f"sqlite:///{HERE}/mlflow.db"})
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).data
    frame.columns = [c.replace("/", "_") for c in frame.columns]
    row = {k: float(v) for k, v in frame.iloc[0].items()}
    results: dict[str, list[dict[str, float]]] = {"conveyor": [], "mlflow": []}
    for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
        for name, python, code in (("conveyor", sys.executable, CONVEYOR_COLD), ("mlflow", mlflow_py, MLFLOW_COLD)):
            started = time.perf_counter()
            result = run_timed(python, code.replace("ROW", json.dumps(row)), HERE, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
            result["process"] = time.perf_counter() - started
            results[name].append(result)
    assert {r["y"] for r in results["conveyor"]} == {r["y"] for r in results["mlflow"]}, "the forests disagree"
    rows = []
    for key in ("load", "first_predict", "total", "process"):
        c = median([r[key] for r in results["conveyor"]])
        m = median([r[key] for r in results["mlflow"]])
        rows.append((key, f"{c * 1000:.0f} ms", f"{m * 1000:.0f} ms", f"{c / m:.2f}x"))
    print(f"random forest, {args.trees} trees, wine data; medians of {args.runs} fresh processes each")
    print(table(rows, ("phase", "conveyor", "mlflow", "conveyor/mlflow")))


if __name__ == "__main__":
    main()
