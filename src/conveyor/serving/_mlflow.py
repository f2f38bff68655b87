"""MLflow's scoring format on ``/invocations``: ``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs`` (JSON) and ``text/csv``; answers ``{"predictions": …}``."""

from __future__ import annotations

import csv
import io
from typing import Any

from conveyor.entities import Signature
from conveyor.serving._codec import (
    Columns,
    columns_from_mapping,
    columns_from_records,
    columns_from_rows,
    jsonable,
)
from conveyor.serving._errors import bad_request, unprocessable

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_json(body: Any, signature: Signature | None) -> tuple[Columns, int]:
    """A JSON scoring request → checked columns and row count.

    Example::

        >>> parse_json({"dataframe_records": [{"x": 1.0}]}, None)[1]
        1
    """
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object with one of the keys {list(FORMATS)}")
    found = [k for k in FORMATS if k in body]
    if len(found) != 1:
        what = "none" if not found else ", ".join(found)
        raise bad_request(f"the body must have exactly one of {list(FORMATS)}; found {what}")
    extra = [k for k in body if k not in (*FORMATS, "params")]
    if extra:
        raise bad_request(f"unexpected key(s) {extra} next to {found[0]!r}")
    if body.get("params"):
        raise unprocessable("'params' are not supported by this model; remove them")
    key = found[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise bad_request("dataframe_split needs {'columns': [...], 'data': [[...], ...]}")
        names = value.get("columns")
        if names is None:
            names = signature.input_names if signature else []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad_request("dataframe_split 'columns' must be a list of column names")
        return columns_from_rows(names, value["data"], signature)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise bad_request("dataframe_records must be a list of objects")
        return columns_from_records(value, signature)
    return _tensor_input(key, value, signature)


def _tensor_input(key: str, value: Any, signature: Signature | None) -> tuple[Columns, int]:
    if isinstance(value, dict):  # {"column": [values…]}
        return columns_from_mapping(value, signature)
    if not isinstance(value, list) or not value:
        raise bad_request(f"{key} must be a non-empty list (rows) or an object (columns)")
    if all(isinstance(v, dict) for v in value):
        return columns_from_records(value, signature)
    names = signature.input_names if signature and signature.inputs else None
    if names is None:
        return columns_from_mapping({key: value}, None)
    if len(names) == 1 and not all(isinstance(v, list) and len(v) == 1 for v in value):
        return columns_from_mapping({names[0]: value}, signature)
    return columns_from_rows(names, value, signature)


def parse_csv(data: bytes, signature: Signature | None) -> tuple[Columns, int]:
    """``text/csv`` with a header row; empty cells are missing values."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"CSV body is not UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [r for r in reader if r]
    except csv.Error as exc:
        raise bad_request(f"CSV does not parse: {exc}") from None
    if len(rows) < 2:
        raise bad_request("CSV needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    specs = {c.name: c for c in signature.inputs} if signature else {}
    columns: dict[str, list[Any]] = {n: [] for n in header}
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise unprocessable(f"CSV row {i + 1} has {len(row)} cells, the header has {len(header)}")
        for name, cell in zip(header, row, strict=True):
            columns[name].append(_cell(cell, specs.get(name)))
    return columns_from_mapping(columns, signature)


def _cell(cell: str, spec: Any) -> Any:
    if cell == "":
        return None
    if spec is None or spec.dtype in ("string", "bytes", "datetime"):
        return cell
    if spec.dtype == "bool":
        low = cell.lower()
        return True if low in ("true", "1") else False if low in ("false", "0") else cell
    try:
        number = float(cell)
    except ValueError:
        return cell  # the column check names it
    return int(number) if spec.dtype.startswith(("int", "uint")) and number.is_integer() else number


def requested_outputs(values: list[str], known: list[str]) -> list[str] | None:
    """The outputs asked for with ``?output=probabilities`` (repeated or comma-separated;
    e.g. ``?output=prediction,probabilities``), or None for the model's default answer."""
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not wanted:
        return None
    unknown = [w for w in wanted if known and w not in known]
    if unknown:
        raise unprocessable(f"query parameter output: unknown output(s) {unknown}; the model answers {known}")
    return list(dict.fromkeys(wanted))


def predictions(outputs: Columns) -> list[Any]:
    """``predictions`` as MLflow writes them: a list of values for one output, a list of
    records for several."""
    if len(outputs) == 1:
        (arr,) = outputs.values()
        return jsonable(arr)
    lists = {k: jsonable(v) for k, v in outputs.items()}
    n = len(next(iter(lists.values())))
    return [{k: v[i] for k, v in lists.items()} for i in range(n)]
