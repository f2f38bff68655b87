"""Checks that need the model or the data, not only predictions: the data check, the
operational check, and the predictions of the simpler baseline."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from conveyor.errors import ConveyorError, InvalidInput
from conveyor.gates._result import Check
from conveyor.gates._spec import GateSpec


def data_check(spec: GateSpec, frame: Any, features: Any, model: Any, dataset: str, tracker: Any) -> Check:
    """No schema anomalies in the evaluation data: the label is present and complete, the
    features satisfy the model's signature, and a ``data:/`` version passes
    ``conveyor.data.validate`` (against the previous version of that data set)."""
    problems: list[str] = []
    evidence: dict[str, Any] = {"rows": int(len(frame)), "label": spec.label}
    nulls = int(frame[spec.label].isna().sum())
    if nulls:
        problems.append(f"label {spec.label!r} has {nulls} missing values")
    validate = getattr(model, "validate", None)
    if callable(validate):
        try:
            validate(features)
            evidence["signature"] = "features match the model signature"
        except InvalidInput as exc:
            problems.append(f"signature: {exc.message}")
            evidence["signature"] = exc.message
    if dataset.startswith("data:/"):
        from conveyor.data import validate as validate_data

        try:
            anomalies = validate_data(dataset, tracker=tracker)
        except ConveyorError as exc:  # e.g. a first version has nothing to compare with
            evidence["conveyor.data.validate"] = f"not run: {exc.message}"
        else:
            errors = [a for a in anomalies if a.severity == "error"]
            evidence["anomalies"] = [a.to_dict() for a in anomalies]
            problems += [str(a) for a in errors]
    if spec.schema_file is not None:
        from conveyor.data import validate as validate_data

        kept = validate_data(frame, schema=schema_path(spec), tracker=tracker)
        evidence["schema_file"] = spec.schema_file
        evidence["schema_anomalies"] = [a.to_dict() for a in kept]
        problems += [f"schema {spec.schema_file}: {a}" for a in kept if a.severity == "error"]
    evidence["problems"] = problems
    summary = "no anomalies" if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3])
    if spec.schema_file is not None and not problems:
        summary += f" (signature, and the rules of {spec.schema_file})"
    return Check("data: evaluation data schema", "data", not problems, summary, evidence)


def schema_path(spec: GateSpec) -> Any:
    """The gate's schema file, relative to the project root and never outside it."""
    from pathlib import Path

    from conveyor.errors import NotFound, UnsafePath
    from conveyor.settings import find_project_root

    assert spec.schema_file is not None
    root = (find_project_root(Path.cwd()) or Path.cwd()).resolve()
    path = (root / spec.schema_file).resolve()
    if not path.is_relative_to(root):
        raise UnsafePath(f"{spec.prefix}.schema_file {spec.schema_file!r} is outside the project",
                         field=f"{spec.prefix}.schema_file", value=spec.schema_file,
                         hint="give a path inside the project folder, e.g. schemas/train.toml")
    if not path.is_file():
        raise NotFound("schema file", spec.schema_file,
                       hint=f"write one with `conveyor data schema NAME -o {spec.schema_file}` "
                       f"({spec.prefix}.schema_file is relative to {root})")
    return path


def operational_check(spec: GateSpec, model: Any, features: Any, *, size: int | None, load_seconds: float | None) -> Check:
    """Model size, load time and p95 latency of single-row predictions."""
    ops = spec.operational
    assert ops is not None
    rows = min(ops.latency_samples, len(features))
    single = [features.iloc[[i]] if hasattr(features, "iloc") else features[i : i + 1] for i in range(rows)]
    if single:
        model.predict(single[0])  # warm-up: first calls pay for lazy initialisation
    timings = []
    for row in single:
        started = time.perf_counter()
        model.predict(row)
        timings.append((time.perf_counter() - started) * 1000)
    p95 = float(np.percentile(timings, 95)) if timings else None
    evidence = {
        "size_mb": None if size is None else size / 1e6,
        "load_seconds": load_seconds,
        "p95_latency_ms": p95,
        "p50_latency_ms": float(np.percentile(timings, 50)) if timings else None,
        "latency_samples": len(timings),
        "limits": ops.model_dump(),
    }
    failures = []
    measured: dict[str, float | None] = {
        "size_mb": None if size is None else size / 1e6, "load_seconds": load_seconds, "p95_latency_ms": p95,
    }
    for key, limit in (("size_mb", ops.max_size_mb), ("load_seconds", ops.max_load_seconds),
                       ("p95_latency_ms", ops.max_p95_latency_ms)):
        value = measured[key]
        if limit is not None and value is not None and value > limit:
            failures.append(f"{key} {value:.4g} > {limit:g}")
    shown = ", ".join(f"{k}={evidence[k]:.4g}" for k in ("size_mb", "load_seconds", "p95_latency_ms") if evidence[k] is not None)
    summary = shown + ("; " + "; ".join(failures) if failures else "; within limits")
    return Check("operational: size, load time, p95 latency", "operational", not failures, summary, evidence)


def baseline_outputs(spec: GateSpec, features: Any, y: Any, train: tuple[Any, Any] | None) -> tuple[Any, Any]:
    """``(predictions, (probabilities, classes) or None)`` of the simpler model on the
    evaluation rows: fitted on ``train`` when given, else out-of-fold (5-fold
    cross-validation) on the evaluation data itself, so the baseline never scores rows it was
    fitted on (a dummy only learns the label prior). A classifier's probabilities are the
    prior for the dummy (which predicts the most frequent class) and the logistic
    regression's for the linear baseline."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert spec.baseline is not None
    classify = spec.task == "classification"
    numeric = features.select_dtypes("number").columns.tolist() if hasattr(features, "select_dtypes") else None
    if spec.baseline.kind == "dummy" or not numeric:
        model: Any = DummyClassifier(strategy="prior") if classify else DummyRegressor()
    else:
        last = LogisticRegression(max_iter=1000) if classify else Ridge()
        model = make_pipeline(SimpleImputer(), StandardScaler(), last)
    pick = (lambda frame: frame[numeric]) if numeric else (lambda frame: np.zeros((len(frame), 1)))
    if train is not None or spec.baseline.kind == "dummy":
        fit_x, fit_y = (pick(train[0]), np.asarray(train[1])) if train is not None else (pick(features), np.asarray(y))
        model.fit(fit_x, fit_y)
        proba = (model.predict_proba(pick(features)), model.classes_) if classify else None
        return model.predict(pick(features)), proba
    cv = KFold(5, shuffle=True, random_state=0)
    pred = cross_val_predict(model, pick(features), np.asarray(y), cv=cv)
    if not classify:
        return pred, None
    classes = np.unique(np.asarray(y))  # cross_val_predict's columns: the sorted labels
    return pred, (cross_val_predict(model, pick(features), np.asarray(y), cv=cv, method="predict_proba"), classes)


class _Fitted:
    """A fitted model as scikit-learn's ``permutation_importance`` expects an estimator: it
    only ever calls ``predict`` (through the scorer); ``fit`` exists to satisfy the check."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, *_: Any) -> _Fitted:  # never called by permutation_importance
        raise TypeError("the gate's candidate is already fitted")

    def predict(self, features: Any) -> Any:
        output = self.model.predict(features)
        output = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output)
        return output[:, 0] if output.ndim == 2 and output.shape[1] == 1 else output


def feature_check(spec: GateSpec, model: Any, features: Any, y: Any) -> Check:
    """ML Test Score Data 2, "all features are beneficial": the permutation importance of every
    input column on the evaluation data (sklearn.inspection.permutation_importance, the drop
    of accuracy — or the rise of RMSE — when that column is shuffled, ``repeats`` times). A
    feature passes only when its importance is shown above ``min_importance``: the mean minus
    two standard deviations of the shuffles must exceed it (a noise column's importance
    scatters around 0 and fails)."""
    import pandas as pd
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, root_mean_squared_error

    fs = spec.features
    assert fs is not None
    if not hasattr(features, "columns"):
        raise InvalidInput(f"{spec.prefix}.features needs named input columns", field=f"{spec.prefix}.features",
                           hint="evaluate on a table (DataFrame, data:/ set or a .parquet/.csv file)")
    frame, target = features.reset_index(drop=True), np.asarray(y)
    if len(frame) > fs.max_rows:
        picked = np.random.default_rng(fs.seed).choice(len(frame), fs.max_rows, replace=False)
        frame, target = frame.iloc[np.sort(picked)].reset_index(drop=True), target[np.sort(picked)]

    if spec.task == "classification":
        def score(est: Any, X: Any, truth: Any) -> float:
            pred = np.asarray(est.predict(X))
            return float(accuracy_score(pd.Series(truth).astype(str), pd.Series(pred.ravel()).astype(str)))
        metric = "accuracy"
    else:
        def score(est: Any, X: Any, truth: Any) -> float:
            return -float(root_mean_squared_error(np.asarray(truth, dtype=float), np.asarray(est.predict(X), dtype=float).ravel()))
        metric = "rmse"
    result = permutation_importance(_Fitted(model), frame, target, scoring=score, n_repeats=fs.repeats,
                                    random_state=fs.seed, n_jobs=1)
    importances = {str(c): float(result.importances_mean[i]) for i, c in enumerate(frame.columns)}
    stds = {str(c): float(result.importances_std[i]) for i, c in enumerate(frame.columns)}
    lower = {c: importances[c] - 2 * stds[c] for c in importances}
    useless = sorted((c for c, v in lower.items() if v <= fs.min_importance), key=importances.__getitem__)
    ranked = sorted(importances, key=importances.__getitem__, reverse=True)
    summary = "no features" if not ranked else (f"{len(useless)} of {len(importances)} feature(s) not shown above "
               f"{fs.min_importance:g} {metric} importance (mean − 2 sd)"
               + (f": {', '.join(useless[:5])}" if useless else "")
               + f"; most important {ranked[0]} ({importances[ranked[0]]:+.4f})")
    return Check(f"features: permutation importance > {fs.min_importance:g}", "features", not useless, summary,
                 {"metric": metric, "importance": importances, "std": stds, "lower": lower, "repeats": fs.repeats,
                  "rows": int(len(frame)), "min_importance": fs.min_importance, "useless": useless})
