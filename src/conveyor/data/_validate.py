"""Validating a table against a schema or an earlier version, reporting anomalies like TFDV.

Structure (missing/extra columns, type changes) and statistics (null-rate jumps) are
compared on profiles; the row-level checks (nulls where none are allowed, values out of
range, unseen categories) run through pandera, a maintained validation library whose
lazy mode collects every failing value in one pass, so each anomaly can show what was
found. pandera is imported only here, only when validating.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import InvalidInput

from conveyor.data._config import DataSettings, Severity
from conveyor.data._profile import profile_frame
from conveyor.data._refs import DatasetRef
from conveyor.data._schema import ColumnSchema, Schema, infer_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Anomaly", "check_frame", "validate"]

_EXAMPLES = 5


@dataclass(frozen=True)
class Anomaly:
    """One finding: which column, what kind, what was expected and what was found.

    Example::

        >>> Anomaly("age", "out_of_range", "0 ≤ value ≤ 120", "2 values, e.g. [-1, 130]", "error").column
        'age'
    """

    column: str | None
    kind: str
    expected: str
    found: str
    severity: Severity

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column is not None else "table"
        return f"[{self.severity}] {where}: {self.kind}: expected {self.expected}, found {self.found}"

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "expected": self.expected, "found": self.found,
                "severity": self.severity}


def _is_frame(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def _table(data: Any, tracker: Any) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """(frame, profile, label) of a reference or a DataFrame."""
    if _is_frame(data):
        return data, profile_frame(data), "<DataFrame>"
    path = _table_file(data)
    if path is not None:  # a CSV/Parquet file not (yet) versioned
        from conveyor.data._profile import read_table, table_format

        frame = read_table(path, table_format(path) or "csv")
        return frame, profile_frame(frame), str(path)
    from conveyor.data._checkout import load
    from conveyor.data._versions import get_version

    version = get_version(data, tracker=tracker)
    if version.kind != "table" or version.profile is None:
        raise InvalidInput(
            f"{version.ref} is a {version.kind}, not a table", field="ref", value=version.ref,
            hint="validate works on CSV/Parquet data sets and DataFrames",
        )
    return load(version.ref, tracker=tracker), version.profile, version.ref  # type: ignore[return-value]


def validate(
    data: str | DatasetRef | pd.DataFrame,
    *,
    against: str | DatasetRef | None = None,
    schema: Schema | str | Path | None = None,
    tracker: Any = None,
    settings: DataSettings | None = None,
) -> list[Anomaly]:
    """Anomalies of a table version (or a DataFrame) against a schema or an older version.

    With ``schema`` (a :class:`Schema` or a schema file) its expectations are checked as
    written. With ``against`` the old version's inferred schema is used (its observed
    ranges only warn: a new maximum is normal growth, not necessarily an error) and null
    rates are compared. With neither, ``against`` is the version before ``data``.

    Example::

        >>> for a in conveyor.data.validate("train@4", against="train@3"):  # doctest: +SKIP
        ...     print(a)
        [error] column 'age': type_change: expected int, found string
    """
    from conveyor.data._versions import data_settings

    config = settings or data_settings(tracker)
    frame, profile, _ = _table(data, tracker)
    old_profile: dict[str, Any] | None = None
    inferred = schema is None
    if schema is None:
        if against is None:
            against = _previous(data, tracker)
        _, old_profile, label = _table(against, tracker)
        schema = infer_schema(old_profile, source=label)
    elif not isinstance(schema, Schema):
        schema = Schema.read(schema)
    return check_frame(frame, schema, config, profile=profile, old_profile=old_profile, ranges_warn=inferred)


def _table_file(data: Any) -> Path | None:
    """``data`` as an existing .csv/.parquet file, or None when it names a data set."""
    from conveyor.data._profile import table_format

    if isinstance(data, os.PathLike) or (isinstance(data, str) and not data.startswith("data:/")):
        path = Path(data)
        if table_format(path) is not None and path.is_file():
            return path
    return None


def _previous(data: Any, tracker: Any = None) -> str:
    from conveyor.data._refs import parse_dataset_ref

    if _is_frame(data):
        raise InvalidInput("validating a DataFrame needs against= or schema=", field="against")
    if _table_file(data) is not None:
        raise InvalidInput(
            f"{data} is a file, not a version: there is no previous version to compare it with",
            field="against", value=str(data),
            hint="pass --against NAME@V (a versioned table) or --schema FILE",
        )
    ref = parse_dataset_ref(data)
    from conveyor.data._versions import get_version

    version = get_version(ref, tracker=tracker)
    if version.version == 1:
        raise InvalidInput(
            f"{version.ref} is the first version: there is nothing to compare it with", field="against",
            hint="pass --against NAME@V or --schema FILE",
        )
    return f"{version.name}@{version.version - 1}"


def check_frame(
    frame: pd.DataFrame,
    schema: Schema,
    config: DataSettings | None = None,
    *,
    profile: dict[str, Any] | None = None,
    old_profile: dict[str, Any] | None = None,
    ranges_warn: bool = False,
) -> list[Anomaly]:
    """The anomalies of ``frame`` against ``schema`` (and, if given, an old profile)."""
    config = config or DataSettings.from_section({})
    profile = profile or profile_frame(frame)
    out: list[Anomaly] = []

    def add(column: str | None, kind: str, expected: str, found: str, cap: Severity | None = None) -> None:
        severity = config.severity_of(kind)
        if cap == "warning" and kind not in config.severity:
            severity = "warning"
        out.append(Anomaly(column, kind, expected, found, severity))

    columns = profile["columns"]
    if profile["rows"] < schema.min_rows:
        add(None, "empty_table", f"at least {schema.min_rows} rows", f"{profile['rows']} rows")
    for spec in schema.columns:
        if spec.name not in columns and spec.required:
            add(spec.name, "missing_column", f"column of type {spec.type}", "no such column")
    if not schema.allow_extra_columns:
        for name in columns:
            if schema.column(name) is None:
                add(name, "extra_column", "no such column (not in the schema)", f"column of type {columns[name]['type']}")
    checked: list[ColumnSchema] = []
    for spec in schema.columns:
        col = columns.get(spec.name)
        if col is None:
            continue
        if col["type"] != spec.type and not (spec.type == "float" and col["type"] == "int"):
            # int data read as float (e.g. NaNs appeared) is a milder change than int → string
            cap: Severity | None = "warning" if {spec.type, col["type"]} == {"int", "float"} else None
            add(spec.name, "type_change", spec.type, f"{col['type']} ({col['dtype']})", cap)
            if cap is None:
                continue
        checked.append(spec)
        if spec.max_null_rate is not None and col["null_rate"] > spec.max_null_rate:
            add(spec.name, "null_rate_jump", f"null rate ≤ {spec.max_null_rate:.4g}", f"{col['null_rate']:.4g}")
        old = (old_profile or {}).get("columns", {}).get(spec.name)
        if old is not None and spec.nullable and col["null_rate"] - old["null_rate"] > config.null_rate_jump:
            add(spec.name, "null_rate_jump", f"null rate near {old['null_rate']:.4g} (+{config.null_rate_jump:.4g} allowed)",
                f"{col['null_rate']:.4g}")
    _row_checks(frame, checked, add, ranges_warn)
    return out


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _row_checks(frame: pd.DataFrame, specs: list[ColumnSchema], add: Any, ranges_warn: bool) -> None:
    """Run pandera over the rows; report each failing (column, check) once, with examples."""
    import pandera.errors
    import pandera.pandas as pa

    plan: dict[str, list[tuple[str, str]]] = {}  # column → (kind, expected) per check number
    columns: dict[str, Any] = {}
    for spec in specs:
        checks, meaning = [], []
        if spec.type in ("int", "float") and (spec.min is not None or spec.max is not None):
            low = spec.min if spec.min is not None else float("-inf")
            high = spec.max if spec.max is not None else float("inf")
            checks.append(pa.Check.in_range(low, high))
            meaning.append(("out_of_range", f"{spec.min if spec.min is not None else '-∞'} ≤ value ≤ "
                                            f"{spec.max if spec.max is not None else '∞'}"))
        if spec.categories is not None:
            checks.append(pa.Check.isin(list(spec.categories)))
            shown = ", ".join(repr(c) for c in spec.categories[:10]) + (" …" if len(spec.categories) > 10 else "")
            meaning.append(("new_category", f"one of {{{shown}}}"))
        plan[spec.name] = meaning
        columns[spec.name] = pa.Column(checks=checks, nullable=spec.nullable, required=False, coerce=False)
    if not columns:
        return
    try:
        pa.DataFrameSchema(columns, strict=False).validate(frame, lazy=True)
        return
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    for (column, check, number), group in cases.groupby(["column", "check", "check_number"], dropna=False, sort=True):
        values = group["failure_case"].tolist()
        examples = sorted({_show(v) for v in values})[:_EXAMPLES]
        found = f"{len(values)} value{'s' if len(values) != 1 else ''}, e.g. [{', '.join(examples)}]"
        if check == "not_nullable":
            add(column, "unexpected_nulls", "no nulls", f"{len(values)} null{'s' if len(values) != 1 else ''}")
            continue
        meaning = plan.get(str(column), [])
        index = int(number) if number == number and number is not None else -1
        if 0 <= index < len(meaning):
            kind, expected = meaning[index]
            add(column, kind, expected, found, "warning" if ranges_warn and kind == "out_of_range" else None)
        else:
            add(column, "type_change", str(check), found)


def schema_of(ref: str | DatasetRef, *, tracker: Any = None) -> Schema:
    """The schema inferred from a table version's profile: a starting point to edit and keep.

    Example::

        >>> conveyor.data.schema_of("train@1").write("schemas/train.toml")  # doctest: +SKIP
    """
    from conveyor.data._versions import get_version

    version = get_version(ref, tracker=tracker)
    if version.profile is None:
        raise InvalidInput(
            f"{version.ref} is a {version.kind}, not a table", field="ref", value=version.ref,
            hint="schemas exist for CSV/Parquet data sets",
        )
    return infer_schema(version.profile, source=version.ref)
