"""Quickstart stage: package the best model, enforce its signature, convert it to ONNX.

Needs from earlier stages: ``story.facts["best_run"]`` (a run whose ``model`` artifact is
the conveyor package of a scikit-learn model) and ``story.facts["data"]``
(``X_train, X_test, y_train, y_test``), both from the tracking stage. Leaves
``story.facts["model_uri"]`` (``runs:/<best>/model``) and ``story.facts["onnx_uri"]``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from conveyor.quickstart._run import Story


def _per_row_us(predict: Any, row: Any, calls: int = 200) -> float:
    predict(row)
    started = time.perf_counter()
    for _ in range(calls):
        predict(row)
    return (time.perf_counter() - started) / calls * 1e6


def stage(story: Story) -> None:
    import numpy as np

    import conveyor.models
    from conveyor.errors import InvalidInput

    best: str = story.facts["best_run"]
    X_train, X_test, _, y_test = story.facts["data"]
    tracker = story.tracker
    uri = f"runs:/{best}/model"
    loaded = conveyor.models.load(uri, tracker=tracker)  # skops: scikit-learn/numpy types only
    model = loaded.native
    sig = loaded.signature
    assert sig is not None
    table = Table(title=f"model package {uri}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("flavor", loaded.flavor)
    table.add_row("inputs", f"{len(sig.inputs)} columns, e.g. {sig.inputs[0].name} ({sig.inputs[0].dtype})")
    table.add_row("outputs", ", ".join(f"{c.name} ({c.dtype})" for c in sig.outputs))
    table.add_row("requirements", ", ".join(loaded.requirements))
    story.console.print(table)

    accuracy = float(np.mean(loaded.predict(X_test) == np.asarray(y_test)))
    story.console.print(f"loaded back from the artifact store: test accuracy {accuracy:.4f}")

    row = X_test.iloc[0].to_dict()
    bad = {k: v for k, v in row.items() if k != "mean area"} | {"colour": "red"}
    try:
        loaded.predict([bad])
    except InvalidInput as exc:
        story.console.print(f"[yellow]a request with a missing and an extra column is refused:[/] {escape(exc.headline)}")

    try:
        with tempfile.TemporaryDirectory() as tmp:
            conveyor.models.to_onnx(model, sig, Path(tmp) / "onnx")
            onnx_art = tracker.log_artifacts(best, Path(tmp) / "onnx", "package-onnx")
    except InvalidInput as exc:  # the `onnx` extra is not installed: the loop goes on without it
        hint = exc.hint or "pip install 'conveyor-mlops[onnx]'"
        story.console.print(f"[yellow]ONNX conversion skipped:[/] {escape(exc.message)}; to include it: {escape(hint)}")
        story.facts["model_uri"] = uri
        return
    onnx_uri = f"runs:/{best}/{onnx_art.path}"
    onnx_model = conveyor.models.load(onnx_uri, tracker=tracker)
    agree = bool((onnx_model.predict(X_test) == loaded.predict(X_test)).all())
    sk_us = _per_row_us(loaded.predict, [row])
    onnx_us = _per_row_us(onnx_model.predict, [row])
    story.console.print(
        f"ONNX conversion: predictions agree on the test set: {agree}; one-row predict "
        f"{sk_us:.0f} µs (scikit-learn) vs {onnx_us:.0f} µs (onnxruntime), {sk_us / onnx_us:.1f}x"
    )
    story.facts["model_uri"] = uri
    story.facts["onnx_uri"] = onnx_uri
