"""Gate benchmark (issue 4): a conveyor gate — paired bootstrap (1,000 resamples) of the
candidate against a baseline model on 100,000 evaluation rows, plus 3 absolute thresholds
(and the data check) — against MLflow doing the same job: ``mlflow.evaluate`` of the
candidate and of the baseline model, then ``mlflow.validate_evaluation_results`` with the
same 3 thresholds. Same data, same scikit-learn models (trained identically in each
environment), models loaded before timing; each side runs in its own fresh process.

Like for like: both sides persist their evaluation inside the timed region (conveyor stores
the evaluation with all its evidence in its metadata store, for a registered candidate;
MLflow logs metrics to runs in its SQLite store), and MLflow is run twice: with its default
classifier evaluator (more metrics than conveyor's, plus plots) and at its best with the
same metric set as conveyor (accuracy, balanced accuracy, error rate, f1, precision, recall,
as ``extra_metrics`` with ``model_type=None``, so no default metrics and no plots).

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
import conveyor
import conveyor.models
from conveyor.gates import Subject, define_gate, evaluate, evaluations
from conveyor.registry import Registry
from conveyor.tracking import get_tracker


from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
baseline = make_pipeline(ColumnTransformer([("keep", "passthrough", weak)]), LogisticRegression(max_iter=1000))
baseline.fit(train[features], train["label"])
shutil.rmtree(".conveyor", ignore_errors=True)  # a fresh store each run (created before the clock)
registry = Registry(get_tracker())
for name, model in (("base", baseline), ("cand", candidate)):  # v1 = baseline, v2 = candidate
    with conveyor.start_run(experiment="bench-gates") as run:
        conveyor.models.log(model, "model", input_example=train[features].head(3))
    registry.register(f"runs:/{run.id}/model", "bench")
cand = Subject(registry.load_model("models:/bench/2"), "bench", 2)
base = Subject(registry.load_model("models:/bench/1"), "bench", 1)
spec = define_gate(
    "bench", label="label", metrics=["accuracy >= 0.7", "f1 >= 0.7", "precision >= 0.7"],
    compare={"metric": "f1", "test": "bootstrap", "resamples": 1000, "margin": 0.0},
)
started = time.perf_counter()
result = evaluate(spec, cand, evaluation, champion=base, registry=registry, save=True)
elapsed = time.perf_counter() - started
stored = evaluations(registry, "bench", 2)
assert [e.id for e in stored] == [result.id]  # persisted, evidence and all
boot = next(c for c in result.checks if c.kind == "compare").evidence
print(json.dumps({"seconds": elapsed, "passed": result.passed, "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
                  "n": boot["n"], "resamples": boot["resamples"], "metrics": sorted(result.metrics)}))
"""

MLFLOW = TRAIN + """
import json, os, shutil, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import mlflow, mlflow.sklearn, mlflow.pyfunc
from mlflow.models import MetricThreshold, make_metric
from mlflow.metrics import MetricValue
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
same_metrics = __SAME_METRICS__  # filled in by main()
baseline = make_pipeline(ColumnTransformer([("keep", "passthrough", weak)]), LogisticRegression(max_iter=1000))
baseline.fit(train[features], train["label"])
for name, model in (("cand", candidate), ("base", baseline)):
    shutil.rmtree(f"mlflow-{name}", ignore_errors=True)
    mlflow.sklearn.save_model(model, f"mlflow-{name}", input_example=train[features].head(3))
cand = mlflow.pyfunc.load_model("mlflow-cand")
base = mlflow.pyfunc.load_model("mlflow-base")


def metric(name, fn, greater=True):
    def eval_fn(predictions, targets, metrics=None):
        return MetricValue(aggregate_results={name: float(fn(targets, predictions))})
    return make_metric(eval_fn=eval_fn, greater_is_better=greater, name=name)


# conveyor's classification metrics (macro averages on this binary task, as conveyor's)
extra = [metric("accuracy_score", skm.accuracy_score),
         metric("balanced_accuracy", skm.balanced_accuracy_score),
         metric("error_rate", lambda t, p: 1 - skm.accuracy_score(t, p), greater=False),
         metric("f1_score", lambda t, p: skm.f1_score(t, p, average="macro")),
         metric("precision_score", lambda t, p: skm.precision_score(t, p, average="macro", zero_division=0)),
         metric("recall_score", lambda t, p: skm.recall_score(t, p, average="macro"))]
kwargs = dict(model_type=None, extra_metrics=extra) if same_metrics else \
    dict(model_type="classifier", evaluators="default", evaluator_config={"log_model_explainability": False})
thresholds = {
    "accuracy_score": MetricThreshold(threshold=0.7, greater_is_better=True),
    "f1_score": MetricThreshold(threshold=0.7, greater_is_better=True),
    "precision_score": MetricThreshold(threshold=0.7, greater_is_better=True),
}
mlflow.set_experiment("bench-gates")  # creates the tracking database before the clock starts
with mlflow.start_run():
    pass
started = time.perf_counter()
with mlflow.start_run():
    candidate_result = mlflow.models.evaluate(cand, evaluation, targets="label", **kwargs)
with mlflow.start_run():
    baseline_result = mlflow.models.evaluate(base, evaluation, targets="label", **kwargs)
try:
    mlflow.validate_evaluation_results(thresholds, candidate_result, baseline_result)
    passed = True
except Exception:
    passed = False
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "passed": passed, "metrics": sorted(candidate_result.metrics)}))
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
    ours: list[dict] = []
    theirs: dict[str, list[dict]] = {"default": [], "same": []}
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{FOLDER}/mlflow.db"}
    for attempt in range(args.runs):
        ours.append(run_timed(sys.executable, CONVEYOR, FOLDER))
        line = f"run {attempt + 1}: conveyor {ours[-1]['seconds']:.3f}s"
        if mlflow_py is not None:
            for mode in theirs:
                code = MLFLOW.replace("__SAME_METRICS__", repr(mode == "same"))
                theirs[mode].append(run_timed(mlflow_py, code, FOLDER, env=env))
                line += f", MLflow ({mode} metrics) {theirs[mode][-1]['seconds']:.3f}s"
        print(line, flush=True)
    c = median([r["seconds"] for r in ours])
    rows = [("conveyor gate, evaluation stored (bootstrap 1,000 × %d rows + 3 thresholds + data check)" % args.rows,
             f"{c:.3f}", "1.0×")]
    labels = {"default": "mlflow.evaluate, default classifier evaluator (its metrics + plots)",
              "same": "mlflow.evaluate, conveyor's 6 metrics only (extra_metrics, model_type=None)"}
    for mode, results in theirs.items():
        if results:
            m = median([r["seconds"] for r in results])
            rows.append((labels[mode] + " × 2 models + validate_evaluation_results", f"{m:.3f}", f"{m / c:.1f}× slower"))
    print()
    print(table(rows, ("median of %d fresh-process runs" % args.runs, "seconds", "vs conveyor")))
    last = ours[-1]
    print(f"\nconveyor decision: passed={last['passed']}, f1 improvement CI [{last['ci_low']:+.4f}, "
          f"{last['ci_high']:+.4f}] from {last['resamples']} resamples over n={last['n']}")
    print(f"metrics per model: conveyor {last['metrics']}")
    for mode, results in theirs.items():
        if results:
            print(f"metrics per model: MLflow {mode}: {results[-1]['metrics']}")
    if theirs["same"]:
        print(f"speed-up against MLflow at its best (same metrics): "
              f"{median([r['seconds'] for r in theirs['same']]) / c:.1f}× (target ≥ 5×)")


if __name__ == "__main__":
    main()
