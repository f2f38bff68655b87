"""conveyor.data: versioned data sets (files, folders, tables), schemas, validation, lineage.

    import conveyor.data as cd

    v = cd.add("data/train.csv", name="train")      # data:/train@1 (or unchanged)
    frame = cd.load("train@1")                       # a DataFrame for tables, a path otherwise
    anomalies = cd.validate("train@2", against="train@1")
    cd.record_lineage(None, "data:/train@1", "runs:/ab12", "input")

Functions take ``tracker=`` (anything with ``.store`` and ``.blobs``, e.g. a ``Tracker``);
without it they use the stores named by the project's settings.

``[data]`` settings in conveyor.toml (all optional):

- ``hash_workers`` (int, default 2 × cores): threads that hash and store files.
- ``fail_on`` (``"warning"``/``"error"``, default ``"error"``): lowest anomaly severity that
  makes ``conveyor data validate`` exit 1.
- ``null_rate_jump`` (float, default 0.1): null-rate increase against the old version
  that counts as an anomaly.
- ``[data.severity]``: per-kind severity overrides, e.g. ``new_category = "error"``.
"""

from conveyor.data._checkout import get, load
from conveyor.data._config import DataSettings
from conveyor.data._diff import DatasetDiff, diff
from conveyor.data._lineage import Edge, LineageGraph, lineage_graph, record_lineage
from conveyor.data._refs import KINDS, DatasetRef, Node, parse_dataset_ref, parse_node
from conveyor.data._schema import ColumnSchema, Schema, infer_schema
from conveyor.data._types import DatasetVersion
from conveyor.data._validate import Anomaly, check_frame, schema_of, validate
from conveyor.data._versions import add, get_version, list_datasets, log_input, versions

__all__ = [
    "Anomaly",
    "ColumnSchema",
    "DataSettings",
    "DatasetDiff",
    "DatasetRef",
    "DatasetVersion",
    "Edge",
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
    "validate",
    "versions",
]
