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
    evidence["problems"] = problems
    summary = "no anomalies" if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3])
    return Check("data: evaluation data schema", "data", not problems, summary, evidence)


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


def baseline_predictions(spec: GateSpec, features: Any, y: Any, train: tuple[Any, Any] | None) -> Any:
    """Predictions of the simpler model on the evaluation rows: fitted on ``train`` when
    given, else out-of-fold (5-fold cross-validation) on the evaluation data itself, so the
    baseline never scores rows it was fitted on (a dummy only learns the label prior)."""
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
        model: Any = DummyClassifier(strategy="most_frequent") if classify else DummyRegressor()
    else:
        last = LogisticRegression(max_iter=1000) if classify else Ridge()
        model = make_pipeline(SimpleImputer(), StandardScaler(), last)
    pick = (lambda frame: frame[numeric]) if numeric else (lambda frame: np.zeros((len(frame), 1)))
    if train is not None:
        model.fit(pick(train[0]), np.asarray(train[1]))
        return model.predict(pick(features))
    if spec.baseline.kind == "dummy":
        return model.fit(pick(features), np.asarray(y)).predict(pick(features))
    return cross_val_predict(model, pick(features), np.asarray(y), cv=KFold(5, shuffle=True, random_state=0))
