"""The trace check of a gate: can one example be stepped through the model's computation?
(ML Test Score Infra 5, "the model is debuggable".)

The first evaluation row goes through the loaded package one step at a time: each
transformer of a scikit-learn ``Pipeline`` (its output width and first values recorded),
then the final estimator. The check passes when the stepped result equals the package's
own ``predict`` on that row, so what a person steps through in a debugger is what serving
computes. A model that is not a ``Pipeline`` is one step: its native model's predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conveyor.gates._result import Check

_SHOWN = 6


def _values(data: Any) -> list[Any]:
    array = np.asarray(data.toarray() if hasattr(data, "toarray") else data)
    return [v.item() if isinstance(v, np.generic) else v for v in array.ravel()[:_SHOWN].tolist()]


def trace_check(model: Any, features: Any) -> Check:
    from sklearn.pipeline import Pipeline

    row = features.iloc[[0]] if hasattr(features, "iloc") else features[:1]
    native = getattr(model, "native", model)
    steps: list[dict[str, Any]] = []
    data: Any = row
    if hasattr(row, "to_numpy") and getattr(native, "feature_names_in_", None) is None:
        data = row.to_numpy()
    if isinstance(native, Pipeline):
        for name, step in native.steps[:-1]:
            if step in (None, "passthrough"):
                continue
            data = step.transform(data)
            steps.append({"step": name, "kind": type(step).__name__,
                          "width": int(np.shape(data)[1]) if np.ndim(data) == 2 else 1, "values": _values(data)})
        final = native.steps[-1][1]
    else:
        final = native
    name = type(final).__name__
    stepped = np.asarray(final.predict(data) if hasattr(final, "predict") else model.predict(row)).ravel()
    served = np.asarray(model.predict(row)).ravel()
    steps.append({"step": "predict", "kind": name, "width": int(stepped.size), "values": _values(stepped)})
    try:
        same = bool(np.allclose(stepped.astype(np.float64), served.astype(np.float64), equal_nan=True))
    except (TypeError, ValueError):
        same = [str(v) for v in stepped] == [str(v) for v in served]
    evidence = {"row": 0, "steps": steps, "stepped": _values(stepped), "predict": _values(served)}
    path = " → ".join(f"{s['step']} ({s['kind']}, {s['width']})" for s in steps)
    summary = (f"row 0 stepped through {len(steps)} step(s): {path}; "
               + ("same as predict" if same else f"stepped {_values(stepped)} but predict {_values(served)}"))
    return Check("trace: one row stepped through the model", "trace", same, summary, evidence)
