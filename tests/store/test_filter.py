"""The filter grammar: what parses, and errors that point at their position."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import FilterSyntaxError
from conveyor.store import parse_filter, parse_order_by
from conveyor.store._filter import And, Compare, Not, Or


def test_precedence_and_over_or() -> None:
    node = parse_filter("metrics.a > 1 or metrics.b > 2 and params.c = 'x'")
    assert isinstance(node, Or)
    assert isinstance(node.parts[1], And)


def test_parentheses_not_and_case_insensitive_keywords() -> None:
    node = parse_filter("NOT (metrics.a >= 1 OR tags.t LIKE 'a%') AND status = 'FINISHED'")
    assert isinstance(node, And) and isinstance(node.parts[0], Not)


@pytest.mark.parametrize(
    ("text", "key"),
    [("metrics.`val loss` < 1", "val loss"), ('metrics."val.acc" > 0', "val.acc"), ("metrics.val.acc > 0", "val.acc")],
)
def test_quoted_and_dotted_keys(text: str, key: str) -> None:
    node = parse_filter(text)
    assert isinstance(node, Compare) and node.field.key == key


def test_empty_filter_matches_everything() -> None:
    assert parse_filter("") is None and parse_filter("   ") is None


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.acc >", 13),
        ("metrics.acc > 0.9 and", 21),
        ("metrics.acc >> 1", 13),
        ("metrics.acc > 1 xyz", 16),
        ("foo = 1", 0),
        ("metrics.acc = 'x'", 0),
        ("params.a < 3", 0),
        ("metrics.a > 1 and bogus.x = 1", 18),
        ("metrics.a ! 1", 10),
    ],
)
def test_errors_point_at_their_position(text: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert info.value.position == position
    assert f"position {position}" in str(info.value)
    assert info.value.field == "filter"


def test_order_by() -> None:
    order = parse_order_by(["metrics.acc desc", "start_time", "params.model ASC"])
    assert [(f.kind, f.key, d) for f, d in order] == [
        ("metric", "acc", True),
        ("attribute", "start_time", False),
        ("param", "model", False),
    ]
    with pytest.raises(FilterSyntaxError):
        parse_order_by(["metrics.acc sideways"])


def test_the_shipped_parser_tables_match_the_grammar() -> None:
    """The LALR tables are built once, at development time, and shipped: a fresh process
    loads them (no pickle) instead of spending most of a CLI search building them."""
    from conveyor.store import _filter, _filter_tables

    # state numbers differ between builds (set order), so the check is the digest plus the
    # same trees from the shipped and a freshly built parser
    assert _filter_tables.DIGEST == _filter.grammar_digest(), "regenerate: python -m conveyor.store._filter"
    built = _filter.build_parser()
    for text in ("metrics.a > 1 and not (params.b in ('x', 'y') or tags.c is null)", "name like 'a%'"):
        assert _filter._parser().parse(text, start="start") == built.parse(text, start="start")


def test_a_cli_search_neither_imports_pandas_nor_builds_the_grammar(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import conveyor.store._filter as f\n"
        "def refuse():\n"
        "    raise AssertionError('grammar built at run time')\n"
        "f.build_parser = refuse\n"
        "from conveyor.cli import main\n"
        "sys.argv = ['conveyor', 'runs', 'list', '-f', \"metrics.a > 1 and params.b = 'x'\"]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    subprocess.run([sys.executable, "-m", "conveyor", "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "runs (0)" in done.stdout, done.stdout  # the search ran
