"""conveyor.data: versioned data sets (files, folders, tables), schemas, validation, lineage.

    import conveyor.data as cd

    v = cd.add("data/train.csv", name="train")      # data:/train@1 (or unchanged)
    frame = cd.load("train@1")                       # a DataFrame for tables, a path otherwise
    anomalies = cd.validate("train@2", against="train@1")
    cd.record_lineage(None, "data:/train@1", "runs:/ab12", "input")

Functions take ``tracker=`` (anything with ``.store`` and ``.blobs``, e.g. a ``Tracker``);
without it they use the stores named by the project's settings. In remote mode (a
``RemoteTracker`` as ``tracker=``, or ``[server] url`` in the settings) they work through
the conveyor server: hashing stays local, objects move over ``/api/v1/datasets/{name}/blobs``
and the server records the version (see docs/server.md, "Data sets in remote mode").

``[data]`` settings in conveyor.toml (all optional):

- ``hash_workers`` (int, default 2 × cores): threads that hash and store files.
- ``fail_on`` (``"warning"``/``"error"``, default ``"error"``): lowest anomaly severity that
  makes ``conveyor data validate`` exit 1.
- ``null_rate_jump`` (float, default 0.1): null-rate increase against the old version
  that counts as an anomaly.
- ``[data.severity]``: per-kind severity overrides, e.g. ``new_category = "error"``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.data._checkout import get, load
    from conveyor.data._config import DataSettings
    from conveyor.data._diff import DatasetDiff, diff
    from conveyor.data._lineage import Edge, LineageGraph, lineage_graph, record_lineage
    from conveyor.data._refs import KINDS, DatasetRef, Node, parse_dataset_ref, parse_node
    from conveyor.data._schema import ColumnSchema, Schema, infer_schema
    from conveyor.data._status import FolderStatus, status
    from conveyor.data._types import DatasetVersion
    from conveyor.data._validate import Anomaly, check_frame, schema_of, validate
    from conveyor.data._versions import add, get_version, list_datasets, log_input, versions

# Loaded on first access: `conveyor data status` and an unchanged `data add` import only
# conveyor.data._status, not the metadata store (SQLAlchemy) and pandas behind the rest.
_WHERE = {
    "get": "_checkout", "load": "_checkout", "DataSettings": "_config", "DatasetDiff": "_diff", "diff": "_diff",
    "Edge": "_lineage", "LineageGraph": "_lineage", "lineage_graph": "_lineage", "record_lineage": "_lineage",
    "KINDS": "_refs", "DatasetRef": "_refs", "Node": "_refs", "parse_dataset_ref": "_refs", "parse_node": "_refs",
    "ColumnSchema": "_schema", "Schema": "_schema", "infer_schema": "_schema", "FolderStatus": "_status",
    "status": "_status", "DatasetVersion": "_types", "Anomaly": "_validate", "check_frame": "_validate",
    "schema_of": "_validate", "validate": "_validate", "add": "_versions", "get_version": "_versions",
    "list_datasets": "_versions", "log_input": "_versions", "versions": "_versions",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"conveyor.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Anomaly",
    "ColumnSchema",
    "DataSettings",
    "DatasetDiff",
    "DatasetRef",
    "DatasetVersion",
    "Edge",
    "FolderStatus",
    "KINDS",
    "LineageGraph",
    "Node",
    "Schema",
    "add",
    "check_frame",
    "diff",
    "get",
    "get_version",
    "infer_schema",
    "lineage_graph",
    "list_datasets",
    "load",
    "log_input",
    "parse_dataset_ref",
    "parse_node",
    "record_lineage",
    "schema_of",
    "status",
    "validate",
    "versions",
]
