"""Gate benchmark (issue 4): a conveyor gate — paired bootstrap (1,000 resamples) of the
candidate against a baseline model on 100,000 evaluation rows, plus 3 absolute thresholds
(and the data check) — against MLflow doing the same job: ``mlflow.evaluate`` of the
candidate and of the baseline model, then ``mlflow.validate_evaluation_results`` with the
same 3 thresholds. Same data, same scikit-learn models (trained identically in each
environment), models loaded before timing; each side runs in its own fresh process.

MLflow runs in its own virtualenv (benchmarks/.venvs/mlflow, created on first use).

Run: ``.venv/bin/python benchmarks/bench_gates.py [--rows 100000] [--runs 3] [--skip-mlflow]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, median, peer_python, run_timed, table  # noqa: E402

FOLDER = WORK / "gates"

PREPARE = """
import sys
import numpy as np, pandas as pd
from sklearn.datasets import make_classification
rows = int(sys.argv[1]) if len(sys.argv) > 1 else {rows}
X, y = make_classification(n_samples=rows + 20000, n_features=20, n_informative=8, class_sep=1.0, random_state=0)
frame = pd.DataFrame(X, columns=[f"f{{i}}" for i in range(20)])
frame["label"] = y
frame.iloc[:20000].to_parquet("train.parquet")
frame.iloc[20000:].reset_index(drop=True).to_parquet("eval.parquet")
print("{{}}")
"""

# Identical training code on both sides: the candidate uses all features, the baseline five.
TRAIN = """
import pandas as pd
from sklearn.linear_model import LogisticRegression
train = pd.read_parquet("train.parquet")
evaluation = pd.read_parquet("eval.parquet")
features = [c for c in train.columns if c != "label"]
candidate = LogisticRegression(max_iter=1000).fit(train[features], train["label"])
weak = features[:5]
baseline_fit = LogisticRegression(max_iter=1000).fit(train[weak], train["label"])
"""

CONVEYOR = TRAIN + """
import json, shutil, time
import numpy as np
import conveyor.models
from conveyor.gates import define_gate, evaluate


from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
baseline = make_pipeline(ColumnTransformer([("keep", "passthrough", weak)]), LogisticRegression(max_iter=1000))
baseline.fit(train[features], train["label"])
for name, model in (("cand", candidate), ("base", baseline)):
    shutil.rmtree(f"conveyor-{name}", ignore_errors=True)
    conveyor.models.save(model, f"conveyor-{name}", input_example=train[features].head(3))
cand = conveyor.models.load("conveyor-cand")
base = conveyor.models.load("conveyor-base")
spec = define_gate(
    "bench", label="label", metrics=["accuracy >= 0.7", "f1 >= 0.7", "precision >= 0.7"],
    compare={"metric": "f1", "test": "bootstrap", "resamples": 1000, "margin": 0.0},
)
started = time.perf_counter()
result = evaluate(spec, cand, evaluation, champion=base, save=False)
elapsed = time.perf_counter() - started
boot = next(c for c in result.checks if c.kind == "compare").evidence
print(json.dumps({"seconds": elapsed, "passed": result.passed, "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
                  "n": boot["n"], "resamples": boot["resamples"]}))
"""

MLFLOW = TRAIN + """
import json, os, shutil, time, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn, mlflow.pyfunc
from mlflow.models import MetricThreshold
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
baseline = make_pipeline(ColumnTransformer([("keep", "passthrough", weak)]), LogisticRegression(max_iter=1000))
baseline.fit(train[features], train["label"])
for name, model in (("cand", candidate), ("base", baseline)):
    shutil.rmtree(f"mlflow-{name}", ignore_errors=True)
    mlflow.sklearn.save_model(model, f"mlflow-{name}", input_example=train[features].head(3))
cand = mlflow.pyfunc.load_model("mlflow-cand")
base = mlflow.pyfunc.load_model("mlflow-base")
thresholds = {
    "accuracy_score": MetricThreshold(threshold=0.7, greater_is_better=True),
    "f1_score": MetricThreshold(threshold=0.7, greater_is_better=True),
    "precision_score": MetricThreshold(threshold=0.7, greater_is_better=True),
}
config = {"log_model_explainability": False}
mlflow.set_experiment("bench-gates")  # creates the tracking database before the clock starts
with mlflow.start_run():
    pass
started = time.perf_counter()
with mlflow.start_run():
    candidate_result = mlflow.models.evaluate(cand, evaluation, targets="label", model_type="classifier",
                                       evaluators="default", evaluator_config=config)
with mlflow.start_run():
    baseline_result = mlflow.models.evaluate(base, evaluation, targets="label", model_type="classifier",
                                      evaluators="default", evaluator_config=config)
try:
    mlflow.validate_evaluation_results(thresholds, candidate_result, baseline_result)
    passed = True
except Exception:
    passed = False
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "passed": passed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    FOLDER.mkdir(parents=True, exist_ok=True)
    run_timed(sys.executable, PREPARE.format(rows=args.rows), FOLDER)
    mlflow_py = None if args.skip_mlflow else peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas", "pyarrow"])
    ours, theirs = [], []
    for attempt in range(args.runs):
        ours.append(run_timed(sys.executable, CONVEYOR, FOLDER))
        if mlflow_py is not None:
            theirs.append(run_timed(mlflow_py, MLFLOW, FOLDER, env={"MLFLOW_TRACKING_URI": f"sqlite:///{FOLDER}/mlflow.db"}))
        print(f"run {attempt + 1}: conveyor {ours[-1]['seconds']:.3f}s"
              + (f", MLflow {theirs[-1]['seconds']:.3f}s" if theirs else ""), flush=True)
    c = median([r["seconds"] for r in ours])
    rows = [("conveyor gate (bootstrap 1,000 × %d rows + 3 thresholds + data check)" % args.rows, f"{c:.3f}", "1.0×")]
    if theirs:
        m = median([r["seconds"] for r in theirs])
        rows.append(("mlflow.evaluate candidate + baseline + validate_evaluation_results (3 thresholds)",
                     f"{m:.3f}", f"{m / c:.1f}× slower"))
    print()
    print(table(rows, ("median of %d fresh-process runs" % args.runs, "seconds", "vs conveyor")))
    last = ours[-1]
    print(f"\nconveyor decision: passed={last['passed']}, f1 improvement CI [{last['ci_low']:+.4f}, "
          f"{last['ci_high']:+.4f}] from {last['resamples']} resamples over n={last['n']}")
    if theirs:
        print(f"speed-up: {median([r['seconds'] for r in theirs]) / c:.1f}× (target ≥ 5×)")


if __name__ == "__main__":
    main()
