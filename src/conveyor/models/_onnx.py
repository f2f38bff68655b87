"""ONNX flavor: an ``onnx.ModelProto`` saved as ``model.onnx`` and run with onnxruntime.

Tables go in as one ``(rows, columns)`` tensor when the graph has one input (what skl2onnx
and most exporters produce), or one ``(rows, 1)`` tensor per column when it has one input
per column. The first graph output is the prediction; a second 2-D output named like
``probabilities`` answers ``predict_proba``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from conveyor.errors import CorruptObject
from conveyor.models._flavor import Flavor

FILE = "model.onnx"
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxSession:
    """An onnxruntime session plus what predict needs to feed it."""

    __slots__ = ("session", "inputs", "dtypes", "label", "proba")

    def __init__(self, session: Any) -> None:
        import numpy as np

        self.session = session
        inputs = session.get_inputs()
        self.inputs = [i.name for i in inputs]
        self.dtypes = [np.dtype(_ORT_TYPES.get(i.type, "float32")) for i in inputs]
        outputs = session.get_outputs()
        self.label = outputs[0].name
        self.proba = next((o.name for o in outputs[1:] if "prob" in o.name.lower()), None)

    def feed(self, batch: Any) -> dict[str, Any]:
        if len(self.inputs) == 1:
            return {self.inputs[0]: batch.to_numpy(self.dtypes[0])}
        columns = batch.to_columns()
        return {
            name: columns[name].astype(dtype, copy=False).reshape(batch.rows, -1)
            for name, dtype in zip(self.inputs, self.dtypes)
        }


class OnnxFlavor(Flavor):
    name: ClassVar[str] = "onnx"
    requirements: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime")

    def can_handle(self, obj: Any) -> bool:
        if "onnx" not in sys.modules:
            return False
        import onnx

        return isinstance(obj, onnx.ModelProto)

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        self.reject_options(options)
        (folder / FILE).write_bytes(obj.SerializeToString())
        return {
            "file": FILE,
            "inputs": [i.name for i in obj.graph.input],
            "outputs": [o.name for o in obj.graph.output],
            "opsets": {op.domain or "ai.onnx": int(op.version) for op in obj.opset_import},
        }

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> OnnxSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # one request is one small matrix: thread hand-offs cost more than they save
        options.intra_op_num_threads = int(opts.get("threads") or 1)
        options.inter_op_num_threads = 1
        path = opts["files"].path(config.get("file", FILE), field="flavor_config.file")
        # from bytes, so onnxruntime has no model folder to resolve external-data paths against:
        # a graph naming /etc/passwd or ../x as tensor data is refused, never read
        try:
            session = ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are pybind classes, not a hierarchy
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            raise CorruptObject(f"{path.name} is not a loadable ONNX model: {str(exc)[:300]}") from None
        return OnnxSession(session)

    def native(self, model: Any) -> Any:
        return model.session

    def predict(self, model: OnnxSession, batch: Any) -> Any:
        return model.session.run([model.label], model.feed(batch))[0]

    def has_proba(self, model: Any, config: Mapping[str, Any]) -> bool:
        return model.proba is not None

    def predict_proba(self, model: OnnxSession, batch: Any) -> Any:
        if model.proba is None:
            return super().predict_proba(model, batch)
        return model.session.run([model.proba], model.feed(batch))[0]

    def native_predict(self, model: Any, example: Any) -> Any:
        import onnxruntime as ort

        from conveyor.models._infer import infer_signature
        from conveyor.models._validate import Validator

        session = OnnxSession(ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]))
        batch = Validator(infer_signature(example))(example)
        return session.session.run([session.label], session.feed(batch))[0]
