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
    and whether missing values (NaN/None) are allowed."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "nullable": self.nullable}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        return cls(str(data["name"]), str(data["dtype"]), tuple(data.get("shape", ())), bool(data.get("nullable")))


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and returns. ``inputs`` are columns of a table (one per feature);
    ``outputs`` usually one column (``prediction``), or one per class for probabilities."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = field(default_factory=tuple)

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [c.to_dict() for c in self.inputs], "outputs": [c.to_dict() for c in self.outputs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(
            tuple(ColumnSpec.from_dict(c) for c in data.get("inputs", ())),
            tuple(ColumnSpec.from_dict(c) for c in data.get("outputs", ())),
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
