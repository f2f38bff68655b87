"""scikit-learn → ONNX conversion (skl2onnx), saved as an ``onnx`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.entities import Signature
from conveyor.errors import InvalidInput


def to_onnx(model: Any, signature: Signature, path: str | Path, *, target_opset: int | None = None) -> Any:
    """Convert a fitted scikit-learn model to ONNX and save it as an ``onnx`` package at ``path``.

    All inputs must be numeric scalar columns; they become one ``(rows, columns)`` tensor
    (float64 unless every column is float32, so predictions match scikit-learn's).
    Classifiers get a ``probabilities`` output, so ``predict_proba`` works. Returns the
    ``ModelInfo`` of the new package, which carries the same signature.

    Example::

        >>> info = to_onnx(clf, loaded.signature, "model-onnx/")  # doctest: +SKIP
        >>> conveyor.models.load("model-onnx/").predict(X[:1])       # doctest: +SKIP
    """
    from conveyor.models._package import missing_framework, save

    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    except ModuleNotFoundError as exc:
        raise missing_framework("conversion to ONNX", exc) from None
    from sklearn.base import is_classifier


    if not isinstance(signature, Signature) or not signature.inputs:
        raise InvalidInput(
            "to_onnx needs the model's input signature", field="signature", value=signature,
            hint="pass loaded.signature or conveyor.models.infer_signature(X)",
        )
    bad = [c.name for c in signature.inputs if c.shape or not c.dtype.startswith(("float", "int", "uint", "bool"))]
    if bad:
        raise InvalidInput(
            f"to_onnx handles numeric scalar columns only; not: {', '.join(bad)}",
            field="signature",
            value=bad,
            hint="encode these columns inside the pipeline's input or keep the sklearn package",
        )
    all_f32 = all(c.dtype == "float32" for c in signature.inputs)
    tensor = FloatTensorType if all_f32 else DoubleTensorType
    try:
        proto = convert_sklearn(
            model,
            initial_types=[("input", tensor([None, len(signature.inputs)]))],
            # probabilities as a plain tensor (not a list of dicts) for predict_proba
            options={"zipmap": False} if is_classifier(model) else None,
            target_opset=target_opset,
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError/… per unsupported piece
        raise InvalidInput(
            f"skl2onnx cannot convert {type(model).__qualname__}: {exc}",
            field="model",
            value=type(model).__qualname__,
            hint="see skl2onnx's supported converters, or keep the sklearn package",
        ) from exc
    return save(proto, path, signature=signature, flavor="onnx", metadata={"converted_from": "sklearn"})
