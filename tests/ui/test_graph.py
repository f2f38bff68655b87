"""The DAG/lineage layout: edges point right, sources sit next to their consumer, names escaped."""

from __future__ import annotations

import re

from conveyor.ui._graph import GNode, draw, layers


def test_layers_follow_the_longest_path_and_pull_sources_forward():
    nodes = ["load", "split", "train", "evaluate", "holdout"]
    edges = [("load", "split"), ("split", "train"), ("train", "evaluate"), ("holdout", "evaluate")]
    grouped = layers([GNode(n, n) for n in nodes], edges)
    where = {n: i for i, g in enumerate(grouped) for n in g}
    assert [where[n] for n in ("load", "split", "train", "evaluate")] == [0, 1, 2, 3]
    assert where["holdout"] == 2  # beside train, not three layers before its only consumer
    assert all(where[a] < where[b] for a, b in edges)


def test_order_within_a_layer_follows_the_parents():
    # a→c, b→d: c must sit level with a and d with b, so the two edges do not cross
    grouped = layers([GNode(n, n) for n in "badc"], [("a", "c"), ("b", "d")])
    assert grouped[1].index("c") == grouped[0].index("a") and grouped[1].index("d") == grouped[0].index("b")


def test_drawing_escapes_and_links():
    evil = "<script>x</script>"
    svg = draw([GNode("a", evil, href="/x?a=1&b=2", status="FINISHED"), GNode("b", "b")],
               [("a", "b", evil)], title=evil)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "href='/x?a=1&amp;b=2'" in svg
    assert len(re.findall(r"<path class='edge'", svg)) == 1 and svg.count("<g class='node ") == 2
