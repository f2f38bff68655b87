"""``conveyor data`` read commands in remote mode: the same value objects as
``conveyor.data`` (``DatasetVersion``, ``DatasetDiff``, ``Anomaly``, ``LineageGraph``,
``Schema``), built from a conveyor server's ``/api/v1/datasets`` and ``/api/v1/lineage``
answers, so every command prints the same thing in both modes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conveyor.errors import InvalidInput


def server(t: Any) -> Any:
    """The tracker's HTTP client when it talks to a server (remote mode), else None."""
    return getattr(t, "http", None)


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def _ref(ref: str) -> tuple[str, int | None]:
    from conveyor.data import parse_dataset_ref

    parsed = parse_dataset_ref(ref)
    return parsed.name, parsed.version


def _version(data: dict[str, Any]) -> Any:
    from conveyor.data._remote import version_of

    return version_of(data)


def list_datasets(http: Any) -> list[Any]:
    from conveyor.data import _remote

    return _remote.list_datasets(http)


def get_version(http: Any, ref: str) -> Any:
    from conveyor.data import _remote

    return _remote.get_version(http, ref)


def versions(http: Any, name: str) -> list[Any]:
    from conveyor.data import _remote

    return _remote.versions(http, name)


def diff(http: Any, a: str, b: str) -> Any:
    from conveyor.data import DatasetDiff

    (name_a, va), (name_b, vb) = _ref(a), _ref(b)
    if name_a != name_b or va is None or vb is None:
        raise InvalidInput(f"{a} and {b}: remote mode compares two numbered versions of one data set",
                           field="b", value=b, hint="write NAME@A NAME@B")
    d = http.json("GET", f"/datasets/{_seg(name_a)}/diff", params={"a": va, "b": vb})
    return DatasetDiff(
        d["a"], d["b"], d["same_content"], tuple(d["added"]), tuple(d["removed"]), tuple(d["changed"]),
        tuple(d["rows"]) if d["rows"] is not None else None, tuple(d["schema_changes"]),
        {c: {s: (v["a"], v["b"]) for s, v in stats.items()} for c, stats in d["changed_columns"].items()},
    )


def validate(http: Any, ref: str, against: str | None) -> list[Any]:
    from conveyor.data import Anomaly

    name, number = _ref(ref)
    if number is None:
        number = get_version(http, ref).version
    params: dict[str, Any] = {}
    if against is not None:
        other, other_number = _ref(against)
        if other != name or other_number is None:
            raise InvalidInput(f"--against {against}: remote mode validates against a numbered version of {name}",
                               field="--against", value=against, hint=f"write {name}@N")
        params["against"] = other_number
    found = http.json("GET", f"/datasets/{_seg(name)}/versions/{number}/validation", params=params)
    return [Anomaly(a["column"], a["kind"], a["expected"], a["found"], a["severity"]) for a in found["anomalies"]]


def schema_of(http: Any, ref: str) -> Any:
    from conveyor.data import Schema

    found = http.json("GET", f"/datasets/{_seg(_ref(ref)[0])}/versions/{get_version(http, ref).version}")
    if found["data_schema"] is None:
        raise InvalidInput(f"data:/{found['name']}@{found['version']} is a {found['kind']}, not a table",
                           field="ref", value=ref, hint="schemas exist for CSV/Parquet data sets")
    doc = found["data_schema"]
    doc["columns"] = {c: {k: v for k, v in spec.items() if v is not None} for c, spec in doc["columns"].items()}
    return Schema.from_dict(doc, source=f"data:/{found['name']}@{found['version']}")


def lineage_graph(http: Any, ref: str, direction: str, depth: int | None) -> Any:
    from conveyor.data import _remote

    return _remote.lineage_graph(http, ref, direction, depth)
