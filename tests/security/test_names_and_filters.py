"""Hostile names and filters: bounded search cost, the same limits and clean errors on
SQLite and PostgreSQL, values always bound as parameters, and names that cannot break
the command line's rendering (issue "hostile input", findings 8, 10 and 11)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import conveyor
from conveyor.cli import app
from conveyor.errors import FilterSyntaxError, InvalidInput
from conveyor.settings import Settings, TrackingSettings
from conveyor.store import Store, parse_filter, search_runs
from conveyor.store._filter import MAX_TERMS, Compare
from conveyor.tracking import Tracker

runner = CliRunner()


def _run(store: Store, name: str, params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
         metrics: dict[str, float] | None = None) -> str:
    with store.write() as conn:
        exp = store.experiments.get_or_create(conn, "hostile")
        run_id = store.runs.create(conn, exp, name=name)
        store.runs.log_params(conn, run_id, params or {})
        if tags:
            store.runs.set_tags(conn, run_id, tags)
        if metrics:
            store.metrics.write(conn, [(run_id, k, v, 0, 1) for k, v in metrics.items()])
    return run_id


def _names(store: Store, text: str, **kwargs: object) -> list[str]:
    with store.read() as conn:
        return sorted(r.name for r in search_runs(conn, filter=text, **kwargs))  # type: ignore[arg-type]


# -- finding 8: a long `and` filter ----------------------------------------------------------------
def test_a_filter_at_the_term_limit_runs_and_matches_on_both_databases(store: Store) -> None:
    keys = {f"k{i}": "x" for i in range(MAX_TERMS)}
    _run(store, "all", params=keys)
    _run(store, "most", params={**keys, "k7": "y"})
    text = " and ".join(f"params.k{i} = 'x'" for i in range(MAX_TERMS))
    assert _names(store, text) == ["all"]
    assert _names(store, f"not ({text})") == ["most"]


def test_the_query_joins_one_table_per_kind_whatever_the_number_of_terms(store: Store) -> None:
    """Linear cost: the SQL grows by one aggregate per comparison, never by a join or a
    subquery per comparison (which made PostgreSQL's planning exponential)."""
    from sqlalchemy import event

    statements: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        shapes = []
        for n in (12, MAX_TERMS // 2):
            statements.clear()
            text = " and ".join(f"params.k{i} = 'x' and tags.t{i} = 'y' and metrics.m{i} > {i}" for i in range(n // 3 + 1))
            text = " and ".join(text.split(" and ")[:n])
            _names(store, f"({text}) or not ({text})", with_data=False)
            sql = statements[-1].upper()
            shapes.append((sql.count(" JOIN "), sql.count("SELECT")))
        assert shapes[0] == shapes[1], shapes
        assert shapes[0][0] <= 4, shapes  # experiments + params + tags + metrics
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)


def test_more_terms_than_the_limit_is_a_clear_error() -> None:
    text = " and ".join(f"params.k{i} = 'x'" for i in range(500))
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert f"the limit is {MAX_TERMS}" in info.value.message and "500 comparisons" in info.value.message


def test_deep_nesting_is_a_clear_error_not_a_recursion_error() -> None:
    for text in ("not " * 1000 + "status = 'FINISHED'", "not (" * 500 + "status = 'x'" + ")" * 500):
        with pytest.raises(FilterSyntaxError, match="nests deeper"):
            parse_filter(text)
    # redundant parentheses add no depth
    node = parse_filter("(" * 1000 + "status = 'x'" + ")" * 1000)
    assert isinstance(node, Compare) and (node.field.key, node.op, node.value) == ("status", "=", "x")


@pytest.mark.postgres
def test_postgres_searches_run_under_the_statement_timeout(postgres_url: str) -> None:
    store = Store.open(postgres_url, create=True)
    try:
        with store.read() as conn:
            search_runs(conn, filter="params.a = 'x'", timeout=2.5)
            from sqlalchemy import text

            assert conn.execute(text("SHOW statement_timeout")).scalar() == "2500ms"
    finally:
        store.close()


@pytest.mark.postgres
def test_a_search_over_the_timeout_is_cancelled_with_a_clean_error(postgres_url: str, tmp_path: Path) -> None:
    """A table lock held elsewhere stands in for a slow query: the search waits, the
    database cancels it after the configured timeout, the user reads one line."""
    import psycopg

    store = Store.open(postgres_url, create=True)
    tracker = Tracker(store, _blobs(tmp_path), TrackingSettings(search_timeout=0.3))
    try:
        with psycopg.connect(postgres_url.replace("+psycopg", "")) as locker:
            locker.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(InvalidInput) as info:
                tracker.search_runs(filter="params.a = 'x'", output="runs")
            locker.rollback()
        assert info.value.field == "tracking.search_timeout"
        assert "SELECT" not in str(info.value)
    finally:
        tracker.close()


def _blobs(tmp_path: Path) -> object:
    from conveyor.blobs import BlobStore

    blobs = BlobStore.open(tmp_path / "artifacts")
    blobs.init()
    return blobs


def test_search_timeout_is_a_documented_setting(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, env={"CONVEYOR_TRACKING_SEARCH_TIMEOUT": "7"})
    assert settings.tracking.search_timeout == 7.0
    docs = (Path(__file__).parents[2] / "docs" / "settings.md").read_text(encoding="utf-8")
    assert "CONVEYOR_TRACKING_SEARCH_TIMEOUT" in docs


# -- finding 11: the two databases agree, errors are clean ------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name = 5", "compare it with a quoted string"),
        ("status in (1, 2)", "compare it with a quoted string"),
        ("params.a = '\\x'", "bad escape"),
        ("params.a = 'a\x00b'", "NUL"),
        ("params.a = 'a\\x00b'", "NUL"),
        ("metrics.a > 99999999999999999999999", "64-bit"),
        ("start_time > -99999999999999999999999", "64-bit"),
        ("params.a in (" + ", ".join(["'x'"] * 1001) + ")", "limit is 1000"),
    ],
)
def test_bad_filters_are_the_same_clean_error_on_both_databases(store: Store, text: str, words: str) -> None:
    _run(store, "r", params={"a": "x"})
    with pytest.raises(FilterSyntaxError) as info:
        _names(store, text)
    assert words in info.value.message


@pytest.mark.parametrize("bad", [-1, -100, 1.5, True, "10", 10**12])
def test_bad_max_results_is_refused_before_the_database(store: Store, bad: object) -> None:
    with pytest.raises(InvalidInput) as info:
        _names(store, "", max_results=bad)
    assert info.value.field == "max_results"


def test_numbers_compared_with_metrics_and_params_still_work(store: Store) -> None:
    _run(store, "big", params={"n": "5"}, metrics={"m": 1e30})
    assert _names(store, "metrics.m > 1e20 and params.n = 5") == ["big"]
    assert _names(store, "metrics.m < 9223372036854775807") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "n" * 300), ("name", "a\x00b"), ("tag", "a\x00b"), ("param", "a\x00b"), ("experiment", "e\x00")],
)
def test_overlong_and_nul_values_are_refused_alike_on_both_databases(store: Store, field: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        if field == "name":
            _run(store, value)
        elif field == "tag":
            _run(store, "t", tags={"t": value})
        elif field == "param":
            _run(store, "p", params={"p": value})
        else:
            with store.write() as conn:
                store.experiments.get_or_create(conn, value)
    assert "NUL" in info.value.message or "limit is 256" in info.value.message or "not valid" in info.value.message


def test_a_value_the_database_refuses_is_bad_input_without_sql(store: Store) -> None:
    """Whatever slips past validation (here a 300-character user name written directly)
    is one line of input error on PostgreSQL, and refused the same way on SQLite."""
    with pytest.raises(InvalidInput) as info:
        with store.write() as conn:
            exp = store.experiments.get_or_create(conn, "e")
            store.runs.create(conn, exp, name="ok", user="u" * 300)
    assert "SELECT" not in str(info.value) and "INSERT" not in str(info.value)


# -- the probe's passing cases: injection attempts are bound as parameters --------------------------
@pytest.mark.parametrize(
    "text",
    [
        "params.a = 'x'' OR ''1''=''1'",
        "params.a = \"x' OR '1'='1\"",
        "params.a = 'x'); DROP TABLE runs; --'",
        "params.`a' OR 1=1 --` = 'x'",
        "tags.\"t\\\"; DELETE FROM runs; --\" = 'y'",
        "name like '%' ",
    ],
)
def test_injection_attempts_are_only_values(store: Store, text: str) -> None:
    _run(store, "victim", params={"a": "x"}, tags={"t": "y"})
    try:
        found = _names(store, text)
    except FilterSyntaxError:  # refused by the grammar: also fine, nothing reached SQL
        found = []
    assert found == (["victim"] if text.startswith("name like") else [])
    assert _names(store, "") == ["victim"]  # the table is still there, unchanged


# -- the command line: exit 2 and one line for every bad filter, on both databases ------------------
@pytest.fixture
def cli_store(store_url: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CONVEYOR_STORE_METADATA_URL", store_url)
    Tracker.from_settings(Settings.load(), create=True).close()
    conveyor.tracking.set_tracker(None)
    yield store_url
    conveyor.tracking.set_tracker(None)


@pytest.mark.parametrize(
    "text",
    ["name = 5", "status in (1,2)", "params.a = '\\x'", "metrics.a > 99999999999999999999",
     "not " * 1000 + "name = 'a'", " and ".join(f"params.k{i} = 'x'" for i in range(160))],
)
def test_cli_bad_filters_exit_2_without_traceback(cli_store: str, text: str) -> None:
    result = runner.invoke(app, ["runs", "list", "-f", text])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "error:" in result.output


def test_cli_negative_limit_exits_2(cli_store: str) -> None:
    result = runner.invoke(app, ["runs", "list", "--limit", "-1"])
    assert result.exit_code == 2, result.output
    assert "max_results" in result.output


# -- finding 10: names with rich markup --------------------------------------------------------------
HOSTILE_NAMES = ["[/]", "[bold]x[/bold]", "[link=file:///etc/passwd]y[/link]", "a[/]b[", "\\[x]"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_markup_in_run_and_experiment_names_is_printed_literally(cli_store: str, name: str) -> None:
    with conveyor.start_run(experiment=name, name=name) as run:
        conveyor.log_params({name: name})
        conveyor.log_metric("acc", 0.5)
        conveyor.set_tag(name, name)
    with conveyor.start_run(experiment=name, name="other") as other:
        conveyor.log_params({name: "other"})
    conveyor.tracking.set_tracker(None)
    wide = {"COLUMNS": "400"}
    for args in (["runs", "list"], ["runs", "show", run.id], ["runs", "compare", run.id, other.id],
                 ["experiments", "list"]):
        result = runner.invoke(app, args, env=wide)
        assert result.exit_code == 0, (args, result.output)
        assert name in result.output, (args, result.output)
    data = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert name in {r["name"] for r in data}


def test_lineage_bad_reference_prints_the_hint_literally(cli_store: str) -> None:
    result = runner.invoke(app, ["lineage", "runs:/bad id"], env={"COLUMNS": "300"})
    assert result.exit_code in (2, 3), result.output
    assert "Traceback" not in result.output
    assert "runs:/<run_id>[/<path>]" in result.output


def test_errors_and_hints_are_printed_literally() -> None:
    from conveyor.cli._common import fail
    from conveyor.errors import ConfigError

    from rich.console import Console

    import conveyor.cli._common as common

    console = Console(record=True, width=300, file=open(os.devnull, "w"))  # noqa: SIM115
    original = common.err_console
    common.err_console = console
    try:
        fail(ConfigError("bad [bold]name[/] [/]", hint="pip install 'conveyor-mlops[postgres]'"))
    finally:
        common.err_console = original
        console.file.close()
    text = console.export_text()
    assert "bad [bold]name[/] [/]" in text
    assert "pip install 'conveyor-mlops[postgres]'" in text


@pytest.mark.postgres
def test_postgres_data_errors_are_one_line_of_bad_input(postgres_url: str) -> None:
    from sqlalchemy import text

    store = Store.open(postgres_url, create=True)
    try:
        with pytest.raises(InvalidInput) as info:
            with store.read() as conn:
                conn.execute(text("SELECT CAST(:v AS bigint)"), {"v": "99999999999999999999999"})
        assert "\n" not in info.value.message and "SELECT" not in info.value.message
        assert "out of range" in info.value.message
    finally:
        store.close()
