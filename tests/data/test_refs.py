from __future__ import annotations

import pytest

from conveyor.data import DatasetRef, Node, parse_dataset_ref, parse_node
from conveyor.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data:/iris@3", DatasetRef("iris", 3)),
        ("iris@3", DatasetRef("iris", 3)),
        ("iris", DatasetRef("iris")),
        ("iris@latest", DatasetRef("iris")),
        ("data:/my-set_v.2", DatasetRef("my-set_v.2")),
    ],
)
def test_dataset_refs(text: str, expected: DatasetRef) -> None:
    assert parse_dataset_ref(text) == expected


@pytest.mark.parametrize("text", ["", "iris@0", "iris@-1", "iris@x", "../iris", "a/b@1", "@3", "iris@3@4"])
def test_bad_dataset_refs_name_the_value(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_dataset_ref(text)
    assert info.value.field in ("name", "ref")


@pytest.mark.parametrize(
    ("text", "node", "back"),
    [
        ("runs:/abc123", Node("run", "abc123"), "runs:/abc123"),
        ("runs:/abc123/model/m.skops", Node("artifact", "abc123/model/m.skops"), "runs:/abc123/model/m.skops"),
        ("data:/iris@2", Node("dataset_version", "iris@2"), "data:/iris@2"),
        ("models:/churn/3", Node("model_version", "churn/3"), "models:/churn/3"),
        ("commit:deadbeef", Node("commit", "deadbeef"), "commit:deadbeef"),
        ("step:train", Node("step", "train"), "step:train"),
    ],
)
def test_nodes_round_trip(text: str, node: Node, back: str) -> None:
    assert parse_node(text) == node
    assert str(node) == back


@pytest.mark.parametrize("text", ["nonsense", "runs:/", "runs:/a-b", "data:/iris", "Bad Kind:x", "commit:", "models:/"])
def test_bad_nodes(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_node(text)
