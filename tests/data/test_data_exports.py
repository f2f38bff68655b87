"""The public surface of conveyor.data is pinned: changing it is a deliberate act."""

from __future__ import annotations

import conveyor.data

EXPECTED = [
    "Anomaly", "ColumnSchema", "DataSettings", "DatasetDiff", "DatasetRef", "DatasetVersion", "Edge", "FolderStatus", "KINDS",
    "LineageGraph", "Node", "Schema", "add", "check_frame", "diff", "get", "get_version", "infer_schema",
    "lineage_graph", "list_datasets", "load", "log_input", "parse_dataset_ref", "parse_node", "record_lineage",
    "schema_of", "status", "validate", "versions",
]


def test_all_is_pinned_and_sorted() -> None:
    assert conveyor.data.__all__ == sorted(EXPECTED)
    assert all(hasattr(conveyor.data, name) for name in EXPECTED)
