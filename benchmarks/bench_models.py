"""Benchmark: load + first predict of a scikit-learn package, and single-row latency.

1. Cold start: a fresh process imports the library, loads a breast-cancer
   LogisticRegression package and predicts one row — conveyor (skops package) vs MLflow's
   ``mlflow.pyfunc.load_model`` + ``predict`` (MLflow in its own virtualenv under
   benchmarks/.venvs/mlflow, created on first use). Both trained identically in their own
   environments; medians over ``--runs`` alternating fresh processes. "in-process" is
   measured from before the first import; "process" is the whole interpreter, from outside.
   conveyor is measured twice: in the project's virtualenv (torch and TensorFlow installed:
   skops' trusted-type table walks scikit-learn's modules, which imports torch through
   ``sklearn.externals.array_api_compat``) and in a lean one with only conveyor's core
   dependencies (benchmarks/.venvs/conveyor-lean), like a serving image for a sklearn model.
2. Single-row latency in this process: scikit-learn's own predict, the conveyor sklearn
   package (with signature validation), the same model converted to ONNX (conveyor package,
   and a raw onnxruntime session), plus a 10,000-row batch.

Run: ``.venv/bin/python benchmarks/bench_models.py [--runs 7] [--skip-mlflow] [--skip-lean]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

HERE = WORK / "bench_models"
ROOT = Path(__file__).resolve().parent.parent

TRAIN = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=10000).fit(X, y)
row = X.iloc[:1]
"""

CONVEYOR_SAVE = TRAIN + """
import conveyor.models, sys
conveyor.models.save(model, sys.argv[1] if len(sys.argv) > 1 else "conveyor-pkg", input_example=X.iloc[:5], overwrite=True)
print("{}")
"""

MLFLOW_SAVE = TRAIN + """
import mlflow.sklearn, shutil, os
shutil.rmtree("mlflow-pkg", ignore_errors=True)
mlflow.sklearn.save_model(model, "mlflow-pkg", input_example=X.iloc[:5])
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

MLFLOW_LATENCY = """
import json, time, statistics
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model("mlflow-pkg")
frame = pd.DataFrame([ROW])
for _ in range(50):
    model.predict(frame)
times = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(300):
        model.predict(frame)
    times.append((time.perf_counter() - t) / 300)
print(json.dumps({"row": statistics.median(times)}))
"""


def cold_start(python: Path | str, code: str, row: dict[str, float]) -> dict[str, float]:
    started = time.perf_counter()
    result = run_timed(python, code.replace("ROW", json.dumps(row)), HERE, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    result["process"] = time.perf_counter() - started
    return result


def per_call(fn: Callable[[], Any], calls: int, repeats: int = 7) -> float:
    """Median seconds per call over ``repeats`` loops of ``calls`` calls (after a warm-up)."""
    for _ in range(max(10, calls // 10)):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return median(times)


def latency() -> list[tuple[str, float, float]]:
    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import conveyor.models

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=10000).fit(X, y)
    sk_pkg = conveyor.models.load(HERE / "conveyor-pkg")
    conveyor.models.to_onnx(model, sk_pkg.signature, HERE / "onnx-pkg")
    onnx_pkg = conveyor.models.load(HERE / "onnx-pkg")
    session = ort.InferenceSession(str(HERE / "onnx-pkg" / "model.onnx"), providers=["CPUExecutionProvider"])

    row_frame = X.iloc[:1]
    row_dict = [row_frame.iloc[0].to_dict()]
    row_np = row_frame.to_numpy()
    big = X.sample(10_000, replace=True, random_state=0)
    big_np = big.to_numpy()
    assert (onnx_pkg.predict(big) == model.predict(big)).all(), "ONNX and sklearn disagree"

    rows = [
        ("sklearn model.predict(DataFrame)", lambda: model.predict(row_frame), lambda: model.predict(big)),
        ("conveyor sklearn package, list of dicts (batch: DataFrame)", lambda: sk_pkg.predict(row_dict),
         lambda: sk_pkg.predict(big)),
        ("conveyor sklearn package, ndarray", lambda: sk_pkg.predict(row_np), lambda: sk_pkg.predict(big_np)),
        ("conveyor ONNX package, list of dicts (batch: DataFrame)", lambda: onnx_pkg.predict(row_dict),
         lambda: onnx_pkg.predict(big)),
        ("conveyor ONNX package, ndarray", lambda: onnx_pkg.predict(row_np), lambda: onnx_pkg.predict(big_np)),
        ("raw onnxruntime session.run", lambda: session.run(["label"], {"input": row_np}),
         lambda: session.run(["label"], {"input": big_np})),
        ("conveyor signature validation only (batch: DataFrame)", lambda: sk_pkg.validate(row_dict),
         lambda: sk_pkg.validate(big)),
    ]
    return [(name, per_call(one, 2000), per_call(batch, 20, repeats=5)) for name, one, batch in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-lean", action="store_true", help="no conveyor run in a torch-free virtualenv")
    args = parser.parse_args()
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)

    run_timed(sys.executable, CONVEYOR_SAVE, HERE)
    from sklearn.datasets import load_breast_cancer

    row = {k: float(v) for k, v in load_breast_cancer(as_frame=True).data.iloc[0].items()}
    mlflow_py = None
    if not args.skip_mlflow:
        mlflow_py = peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas"])
        run_timed(mlflow_py, MLFLOW_SAVE, HERE, env={"MLFLOW_TRACKING_URI": f"sqlite:///{HERE}/mlflow.db"})
        version = subprocess.run([str(mlflow_py), "-c", "import mlflow; print(mlflow.__version__)"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        print(f"MLflow {version} at {mlflow_py}")

    lean_py = None if args.skip_lean else peer_python("conveyor-lean", ["-e", str(ROOT)])

    results: dict[str, list[dict[str, float]]] = {"conveyor": [], "lean": [], "mlflow": []}
    for _ in range(args.runs):  # alternate, so drift in machine load hits all alike
        results["conveyor"].append(cold_start(sys.executable, CONVEYOR_COLD, row))
        if lean_py:
            results["lean"].append(cold_start(lean_py, CONVEYOR_COLD, row))
        if mlflow_py:
            results["mlflow"].append(cold_start(mlflow_py, MLFLOW_COLD, row))

    def med(name: str, key: str) -> float:
        return median([r[key] for r in results[name]])

    keys = ("load", "first_predict", "total", "process")
    rows = [("conveyor, project venv (torch+TF installed)", *(f"{med('conveyor', k) * 1000:.0f} ms" for k in keys))]
    if lean_py:
        rows.append(("conveyor, lean venv (core deps only)", *(f"{med('lean', k) * 1000:.0f} ms" for k in keys)))
    if mlflow_py:
        rows.append(("MLflow pyfunc (own venv)", *(f"{med('mlflow', k) * 1000:.0f} ms" for k in keys)))
        rows.append(("MLflow / conveyor project venv", *(f"{med('mlflow', k) / med('conveyor', k):.2f}x" for k in keys)))
        if lean_py:
            rows.append(("MLflow / conveyor lean venv", *(f"{med('mlflow', k) / med('lean', k):.2f}x" for k in keys)))
    print(f"\nLoad + first predict, fresh processes, median of {args.runs}")
    print(table(rows, ("", "import+load", "first predict", "in-process total", "process wall")))

    lat = latency()
    if mlflow_py:
        mlflow_row = run_timed(mlflow_py, MLFLOW_LATENCY.replace("ROW", json.dumps(row)), HERE)["row"]
        lat.append(("MLflow pyfunc predict(DataFrame), own venv", mlflow_row, float("nan")))
    base = lat[0][1]
    print("\nPredict latency (this process; median per call)")
    print(table(
        [(n, f"{one * 1e6:.0f} µs", f"{base / one:.2f}x", "—" if batch != batch else f"{batch * 1000:.2f} ms")
         for n, one, batch in lat],
        ("", "1 row", "speed vs sklearn", "10,000 rows"),
    ))


if __name__ == "__main__":
    main()
