"""Editable table schemas: inferred from a profile, kept in the project as TOML or JSON.

Inference is a starting point; people then tighten or loosen it (domain knowledge beats
inference), and ``validate --schema FILE`` reads it back. The file format::

    allow_extra_columns = false
    min_rows = 1

    [columns.age]
    type = "int"          # bool | int | float | datetime | string
    nullable = false
    min = 0
    max = 120

    [columns.color]
    type = "string"
    categories = ["blue", "green"]
    max_null_rate = 0.05
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from conveyor.errors import InvalidInput, NotFound

__all__ = ["ColumnSchema", "Schema", "infer_schema"]

TYPES: Final = ("bool", "int", "float", "datetime", "string")
_COLUMN_KEYS: Final = {"type", "nullable", "min", "max", "categories", "max_null_rate", "required"}
_TOP_KEYS: Final = {"allow_extra_columns", "min_rows", "columns"}


@dataclass(frozen=True)
class ColumnSchema:
    """Expectations about one column; ``None`` means "not checked"."""

    name: str
    type: str
    nullable: bool = True
    min: float | int | None = None
    max: float | int | None = None
    categories: tuple[str, ...] | None = None
    max_null_rate: float | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "name"}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.required:
            out.pop("required")
        return out


@dataclass(frozen=True)
class Schema:
    """A table schema: columns plus table-level expectations.

    Example::

        >>> s = Schema((ColumnSchema("age", "int", nullable=False, min=0),))
        >>> Schema.from_dict(s.to_dict()) == s
        True
    """

    columns: tuple[ColumnSchema, ...]
    allow_extra_columns: bool = False
    min_rows: int = 1
    source: str = field(default="inferred", compare=False)

    def column(self, name: str) -> ColumnSchema | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow_extra_columns": self.allow_extra_columns,
            "min_rows": self.min_rows,
            "columns": {c.name: c.to_dict() for c in self.columns},
        }

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "<dict>") -> Schema:
        """Build from a parsed document; every unknown key or bad value names its place."""
        if not isinstance(doc, dict):
            raise InvalidInput(f"schema {source} is not a table/object", field="schema", value=source)
        for key in doc:
            if key not in _TOP_KEYS:
                raise InvalidInput(
                    f"unknown key {key!r} in schema {source}", field=key, value=doc[key],
                    hint=f"known keys: {', '.join(sorted(_TOP_KEYS))}",
                )
        columns = doc.get("columns", {})
        if not isinstance(columns, dict) or not columns:
            raise InvalidInput(f"schema {source} has no [columns.<name>] tables", field="columns", value=columns)
        return cls(
            tuple(_column(name, spec, source) for name, spec in columns.items()),
            allow_extra_columns=_typed(doc, "allow_extra_columns", bool, False, source),
            min_rows=_typed(doc, "min_rows", int, 1, source),
            source=source,
        )

    def write(self, path: str | Path) -> Path:
        """Write as TOML (``.toml``) or JSON (anything else).

        Example::

            >>> schema.write("schemas/train.toml")  # doctest: +SKIP
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".toml":
            import tomli_w

            target.write_text(tomli_w.dumps(self.to_dict()), encoding="utf-8")
        else:
            target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def read(cls, path: str | Path) -> Schema:
        """Read a schema file written by :meth:`write` (and edited by people)."""
        source = Path(path)
        if not source.is_file():
            raise NotFound("schema file", str(source), hint="write one with `conveyor data schema NAME@V --out FILE`")
        text = source.read_text(encoding="utf-8")
        try:
            doc = tomllib.loads(text) if source.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"schema {source} does not parse: {exc}", field="schema", value=str(source)) from exc
        return cls.from_dict(doc, source=str(source))


def _typed(doc: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = doc.get(key, default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and not ok:
        raise InvalidInput(
            f"{key!r} in schema {where} must be {kind.__name__}, not {value!r}", field=key, value=value
        )
    return value


def _column(name: str, spec: Any, source: str) -> ColumnSchema:
    where = f"{source} [columns.{name}]"
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} must be a table", field=f"columns.{name}", value=spec)
    for key in spec:
        if key not in _COLUMN_KEYS:
            raise InvalidInput(
                f"unknown key {key!r} in {where}", field=f"columns.{name}.{key}", value=spec[key],
                hint=f"known keys: {', '.join(sorted(_COLUMN_KEYS))}",
            )
    kind = spec.get("type")
    if kind not in TYPES:
        raise InvalidInput(
            f"{where} type {kind!r} is not valid", field=f"columns.{name}.type", value=kind, hint=f"one of {', '.join(TYPES)}"
        )
    categories = spec.get("categories")
    if categories is not None and (not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)):
        raise InvalidInput(f"{where} categories must be a list of strings", field=f"columns.{name}.categories", value=categories)
    return ColumnSchema(
        name, kind,
        nullable=_typed(spec, "nullable", bool, True, where),
        min=_typed(spec, "min", float, None, where),
        max=_typed(spec, "max", float, None, where),
        categories=tuple(categories) if categories is not None else None,
        max_null_rate=_typed(spec, "max_null_rate", float, None, where),
        required=_typed(spec, "required", bool, True, where),
    )


def infer_schema(profile: dict[str, Any], *, source: str = "inferred") -> Schema:
    """A schema that the profiled data passes: observed types, nullability, ranges, categories.

    Example::

        >>> infer_schema({"rows": 2, "columns": {"a": {"type": "int", "nulls": 0, "min": 1, "max": 2}}}).columns[0].max
        2
    """
    columns = []
    for name, col in profile.get("columns", {}).items():
        numeric = col["type"] in ("int", "float")
        columns.append(
            ColumnSchema(
                name, col["type"], nullable=col.get("nulls", 0) > 0,
                min=col.get("min") if numeric else None, max=col.get("max") if numeric else None,
                categories=tuple(col["categories"]) if col["type"] == "string" and "categories" in col else None,
            )
        )
    return Schema(tuple(columns), allow_extra_columns=False, min_rows=1, source=source)
