"""Open Inference Protocol v2 (KServe/Triton/MLServer) REST: request parsing and answers.

Two input layouts are accepted: one tensor per signature column (shape ``[rows]``,
``[rows, 1]`` or ``[rows, *column shape]``), or one 2-D tensor ``[rows, columns]`` whose
columns follow the signature order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from conveyor.entities import Signature
from conveyor.serving._codec import (
    OIP_ACCEPTS,
    OIP_DATATYPE,
    Columns,
    columns_from_mapping,
    jsonable,
    oip_datatype,
    split_matrix,
)
from conveyor.serving._errors import bad_request, unprocessable

#: most dimensions of one tensor (numpy's own limit is 64) and largest extent of one dimension
MAX_DIMS = 32
MAX_DIM = 2**31 - 1
_NUMPY = {"BOOL": np.bool_, "BYTES": object, **{t: np.float64 for t in ("FP16", "FP32", "FP64")},
          **{t: np.int64 for t in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32")},
          "UINT64": np.uint64}


def _tensor(spec: Any, index: int) -> tuple[str, str, list[int], np.ndarray]:
    if not isinstance(spec, dict):
        raise bad_request(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str) or not name:
        raise bad_request(f"inputs[{index}] has no 'name'")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise bad_request(f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r}")
    if not 1 <= len(shape) <= MAX_DIMS:
        raise unprocessable(f"input {name!r}: 'shape' {_short(shape)} has {len(shape)} dimensions; "
                            f"send 1 to {MAX_DIMS}")
    if any(d > MAX_DIM for d in shape):
        raise unprocessable(f"input {name!r}: 'shape' {_short(shape)} has a dimension over {MAX_DIM}")
    if datatype not in _NUMPY:
        raise bad_request(f"input {name!r}: unknown datatype {datatype!r}; use one of {sorted(_NUMPY)}")
    if "data" not in spec:
        raise bad_request(f"input {name!r} has no 'data' (binary tensor data is not supported)")
    data = spec["data"]
    try:
        arr: np.ndarray = np.asarray(data, dtype=_NUMPY[datatype])
    except (ValueError, TypeError, OverflowError):
        raise unprocessable(f"input {name!r}: data do not match datatype {datatype} (or rows are ragged)") from None
    if arr.size != math.prod(shape):
        raise unprocessable(f"input {name!r}: shape {_short(shape)} holds {math.prod(shape)} values, "
                            f"data has {arr.size}")
    try:
        return name, datatype, shape, arr.reshape(shape)
    except ValueError as exc:  # e.g. [0, 2**40]: no values, but numpy cannot index that shape
        raise unprocessable(f"input {name!r}: shape {_short(shape)} is not a shape numpy can hold ({exc})") from None


def _short(shape: list[int]) -> str:
    return str(shape) if len(shape) <= 8 else f"[{', '.join(map(str, shape[:8]))}, …]"


def parse_infer(body: Any, signature: Signature | None) -> tuple[Columns, int, list[str] | None]:
    """An OIP inference request → checked columns, row count, requested output names.

    Example::

        >>> sig = Signature((ColumnSpec("x", "float64"),))          # doctest: +SKIP
        >>> parse_infer({"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}, sig)[1]  # doctest: +SKIP
        2
    """
    if not isinstance(body, dict):
        raise bad_request("an inference request is a JSON object with an 'inputs' list")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("'inputs' must be a non-empty list of tensors")
    if body.get("parameters") not in (None, {}) and not isinstance(body.get("parameters"), dict):
        raise bad_request("'parameters' must be an object")
    wanted = _requested_outputs(body.get("outputs"))
    tensors = [_tensor(spec, i) for i, spec in enumerate(inputs)]
    names = signature.input_names if signature and signature.inputs else []
    specs = {c.name: c for c in signature.inputs} if signature else {}
    if len(tensors) == 1 and tensors[0][0] not in specs and len(names) != 1:
        name, datatype, shape, arr = tensors[0]
        _check_datatype(name, datatype, [specs[n].dtype for n in names])
        cols, rows = split_matrix(arr, signature, f"input {name!r}")
        return cols, rows, wanted
    data: dict[str, Any] = {}
    for name, datatype, shape, arr in tensors:
        if name in data:
            raise bad_request(f"input {name!r} appears twice")
        spec = specs.get(name)
        if spec is not None:
            _check_datatype(name, datatype, [spec.dtype])
            if not spec.shape and arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
        data[name] = arr
    cols, rows = columns_from_mapping(data, signature)
    return cols, rows, wanted


def _check_datatype(name: str, datatype: str, dtypes: list[str]) -> None:
    for dtype in dtypes:
        if dtype not in OIP_ACCEPTS[datatype]:
            raise unprocessable(
                f"input {name!r} has datatype {datatype}, but the signature says {dtype} "
                f"(send {OIP_DATATYPE.get(dtype, 'BYTES')})"
            )


def _requested_outputs(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise bad_request("'outputs' must be a list of objects with a 'name'")
    return [o["name"] for o in outputs]


def check_outputs(wanted: list[str] | None, known: list[str]) -> None:
    """422 before the model runs when a requested output is not one the model answers."""
    if wanted is None or not known:
        return
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise unprocessable(f"unknown output(s) {unknown}; the model answers {known}")


def infer_response(
    name: str, version: str, request_id: str, outputs: Columns, signature: Signature | None, wanted: list[str] | None
) -> dict[str, Any]:
    """The OIP answer: one typed tensor per output (flattened row-major data)."""
    specs = {c.name: c for c in signature.outputs} if signature else {}
    if wanted is not None:
        unknown = [w for w in wanted if w not in outputs]
        if unknown:
            raise unprocessable(f"unknown output(s) {unknown}; the model returns {list(outputs)}")
    tensors = []
    for out, arr in outputs.items():
        if wanted is not None and out not in wanted:
            continue
        spec = specs.get(out)
        if spec is not None and spec.dtype in OIP_DATATYPE and spec.dtype not in ("string", "bytes", "datetime"):
            try:
                arr = arr.astype(spec.dtype, copy=False)
            except (ValueError, TypeError):
                pass  # report what the model really returned
        tensors.append({"name": out, "datatype": oip_datatype(arr), "shape": list(arr.shape),
                        "data": jsonable(arr.reshape(-1))})
    return {"model_name": name, "model_version": version, "id": request_id, "outputs": tensors}


def metadata(name: str, versions: list[str], flavor: str, signature: Signature | None) -> dict[str, Any]:
    """The OIP model-metadata answer."""

    def tensor(c: Any) -> dict[str, Any]:
        spec = {"name": c.name, "datatype": OIP_DATATYPE.get(c.dtype, "BYTES"), "shape": [-1, *c.shape]}
        if getattr(c, "classes", ()):  # the probability output: the class label of each position
            spec["parameters"] = {"classes": list(c.classes)}
        return spec

    return {
        "name": name,
        "versions": versions,
        "platform": f"conveyor_{flavor}",
        "inputs": [tensor(c) for c in signature.inputs] if signature else [],
        "outputs": [tensor(c) for c in signature.outputs] if signature else [],
    }
