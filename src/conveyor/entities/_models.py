"""Value objects shared by model packages, the registry and serving."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: dtypes a signature may name (numpy names, plus "string", "bool" and "datetime").
DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "string",
    "bytes",
    "datetime",
)


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One named input or output: its dtype, shape of one row's value (``()`` for a scalar),
    and whether missing values (NaN/None) are allowed. ``classes`` names the class label of
    each position of a probability output (empty for every other column)."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    nullable: bool = False
    classes: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "nullable": self.nullable}
        if self.classes:
            data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        return cls(str(data["name"]), str(data["dtype"]), tuple(data.get("shape", ())), bool(data.get("nullable")),
                   tuple(data.get("classes") or ()))


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and returns. ``inputs`` are columns of a table (one per feature);
    ``outputs`` what ``predict`` returns, usually one column (``prediction``).
    ``probabilities`` is the second output of a classifier (``predict_proba``): one float
    per class and row, its ``classes`` naming the label of each position; None for a model
    without one."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = field(default_factory=tuple)
    probabilities: ColumnSpec | None = None

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"inputs": [c.to_dict() for c in self.inputs],
                                "outputs": [c.to_dict() for c in self.outputs]}
        if self.probabilities is not None:
            data["probabilities"] = self.probabilities.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        proba = data.get("probabilities")
        return cls(
            tuple(ColumnSpec.from_dict(c) for c in data.get("inputs", ())),
            tuple(ColumnSpec.from_dict(c) for c in data.get("outputs", ())),
            ColumnSpec.from_dict(proba) if isinstance(proba, Mapping) else None,
        )


@runtime_checkable
class Predictor(Protocol):
    """What every loaded model answers, whatever its framework.

    ``predict`` takes a pandas DataFrame, a numpy array (columns in signature order) or a
    list of dicts, validates it against ``signature`` and returns a numpy array (one row
    per input row) or a DataFrame when the model has several outputs.
    """

    @property
    def signature(self) -> Signature | None: ...

    @property
    def flavor(self) -> str: ...

    def predict(self, data: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved reference to a registered model version (``models:/name@alias``)."""

    name: str
    version: int
    alias: str | None = None
    digest: str | None = None  # manifest of the model package in the artifact store
    run_id: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def columns(names: Sequence[str], dtype: str = "float64") -> tuple[ColumnSpec, ...]:
    """Shorthand for a tuple of same-typed column specs."""
    return tuple(ColumnSpec(n, dtype) for n in names)
