"""Runs, params, tags and metrics at the store level, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from conveyor.entities import RunStatus
from conveyor.errors import AlreadyExists, Conflict, InvalidInput, NotFound, ParamConflict
from conveyor.store import Store, search_runs


def _run(store: Store, experiment: str = "exp") -> str:
    with store.write() as conn:
        exp = store.experiments.get_or_create(conn, experiment)
        return store.runs.create(conn, exp, name="r")


def test_params_are_immutable_but_repeatable(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.runs.log_params(conn, run, {"C": 1.0, "model": "rf"})
    with store.write() as conn:
        store.runs.log_params(conn, run, {"C": 1.0})  # same value again: fine
    with pytest.raises(ParamConflict) as info, store.write() as conn:
        store.runs.log_params(conn, run, {"C": 2.0})
    assert info.value.old == "1.0" and info.value.new == "2.0"
    assert "'1.0'" in str(info.value) and "'2.0'" in str(info.value)


def test_tags_are_mutable(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.runs.set_tags(conn, run, {"team": "a"})
        store.runs.set_tags(conn, run, {"team": "b"})
    with store.read() as conn:
        assert store.runs.get(conn, run).tags == {"team": "b"}


def test_latest_metric_follows_step_then_time(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.metrics.write(conn, [(run, "loss", 0.5, 2, 10), (run, "loss", 0.9, 1, 20)])
        store.metrics.write(conn, [(run, "loss", 0.4, 2, 30), (run, "loss", 0.1, 0, 40)])
    with store.read() as conn:
        assert store.metrics.latest_of(conn, [run])[run]["loss"] == 0.4
        assert [m.step for m in store.metrics.history(conn, run, "loss")] == [0, 1, 2, 2]


def test_nan_and_infinity_round_trip(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.metrics.write(conn, [(run, "a", math.nan, 0, 1), (run, "b", math.inf, 0, 1), (run, "c", -math.inf, 0, 1)])
    with store.read() as conn:
        latest = store.metrics.latest_of(conn, [run])[run]
    assert math.isnan(latest["a"]) and latest["b"] == math.inf and latest["c"] == -math.inf


def test_unknown_run_and_experiment(store: Store) -> None:
    with store.read() as conn:
        with pytest.raises(NotFound, match="run 'nope'"):
            store.runs.get(conn, "nope")
        with pytest.raises(NotFound, match="experiment 'nope'"):
            store.experiments.get(conn, "nope")
        with pytest.raises(KeyError):  # NotFound is also a KeyError
            store.experiments.get(conn, "nope")


def test_duplicate_experiment(store: Store) -> None:
    with store.write() as conn:
        store.experiments.create(conn, "x")
    with pytest.raises(AlreadyExists), store.write() as conn:
        store.experiments.create(conn, "x")


def test_end_twice_is_a_conflict(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.runs.end(conn, run, RunStatus.FINISHED)
    with pytest.raises(Conflict), store.write() as conn:
        store.runs.end(conn, run, RunStatus.FAILED)


@pytest.mark.parametrize("key", ["", " padded", "x" * 251, None, 3])
def test_bad_keys_name_the_key(store: Store, key: object) -> None:
    run = _run(store)
    with pytest.raises(InvalidInput, match="param key"), store.write() as conn:
        store.runs.log_params(conn, run, {key: 1})  # type: ignore[dict-item]


def test_search_filters_and_orders(store: Store) -> None:
    ids = []
    for i, (model, acc) in enumerate([("rf", 0.95), ("rf", 0.85), ("svm", 0.99), ("rf", 0.97)]):
        run = _run(store)
        ids.append(run)
        with store.write() as conn:
            store.runs.log_params(conn, run, {"model": model, "i": i})
            store.runs.set_tags(conn, run, {"team": "x" if i != 3 else "y"})
            store.metrics.write(conn, [(run, "acc", acc, 0, 1)])
    with store.read() as conn:
        found = search_runs(
            conn, filter="metrics.acc > 0.9 and params.model = 'rf'", order_by=["metrics.acc desc"]
        )
        assert [r.id for r in found] == [ids[3], ids[0]]
        found = search_runs(conn, filter="tags.team = 'x' or params.model = 'svm'", order_by=["metrics.acc"])
        assert [r.id for r in found] == [ids[1], ids[0], ids[2]]
        found = search_runs(conn, filter="params.i in ('1', '2') and not metrics.acc < 0.9")
        assert [r.id for r in found] == [ids[2]]
        assert search_runs(conn, filter="metrics.missing is null", max_results=2, order_by=["metrics.acc desc"])[0].id == ids[2]
        assert len(search_runs(conn, filter="name like 'r%' and status = 'running'")) == 4
        # values are bound, never pasted: a quote in a value is just a character
        assert search_runs(conn, filter="params.model = 'rf'' or 1=1 --'") == []


@pytest.mark.parametrize(("filter", "order"), [
    ("metrics.acc > 0.5", "metrics.acc desc"),
    ("metrics.acc <= 0.5 and params.model = 'rf'", "metrics.acc"),
    ("metrics.acc is not null and tags.team = 'x'", "metrics.acc desc"),
    ("params.model in ('rf', 'svm')", "params.model desc"),
    ("params.model != 'rf' and metrics.acc > 0.2", "params.model"),
    ("tags.team = 'x' and metrics.loss < 0.5", "tags.team desc"),
    ("metrics.acc > 0.3 and metrics.acc < 0.8", "metrics.acc desc"),
    ("metrics.loss > 0.1", "metrics.acc desc"),  # ordered by a field the filter does not require
])
def test_a_filter_on_the_ordered_field_gives_the_same_runs_in_the_same_order(
    store: Store, filter: str, order: str
) -> None:
    """The filter on the field a search orders by is applied in its join (the planner can walk
    that index in order); the answer must be what the plain definition gives: checked against
    a computation in Python over runs where the metric, param or tag is sometimes missing."""
    import random

    rng = random.Random(7)
    truth: dict[str, dict[str, object]] = {}
    for i in range(60):
        run = _run(store)
        row: dict[str, object] = {"i": i}
        with store.write() as conn:
            if i % 5:
                row["acc"] = round(rng.random(), 2)
                row["loss"] = round(rng.random(), 2)
                store.metrics.write(conn, [(run, "acc", row["acc"], 0, 1), (run, "loss", row["loss"], 0, 1)])
            if i % 7:
                row["model"] = rng.choice(["rf", "svm", "lr"])
                store.runs.log_params(conn, run, {"model": row["model"]})
            if i % 3:
                row["team"] = rng.choice(["x", "y"])
                store.runs.set_tags(conn, run, {"team": row["team"]})
        truth[run] = row
    with store.read() as conn:
        found = [r.id for r in search_runs(conn, filter=filter, order_by=[order])]
        start = {r.id: r.start_time for r in search_runs(conn)}

    def keep(row: dict[str, object]) -> bool:
        def has(k: str) -> bool:
            return k in row
        checks = {
            "metrics.acc > 0.5": lambda: has("acc") and row["acc"] > 0.5,
            "metrics.acc <= 0.5 and params.model = 'rf'": lambda: has("acc") and row["acc"] <= 0.5 and row.get("model") == "rf",
            "metrics.acc is not null and tags.team = 'x'": lambda: has("acc") and row.get("team") == "x",
            "params.model in ('rf', 'svm')": lambda: row.get("model") in ("rf", "svm"),
            "params.model != 'rf' and metrics.acc > 0.2": lambda: has("model") and row["model"] != "rf" and has("acc") and row["acc"] > 0.2,
            "tags.team = 'x' and metrics.loss < 0.5": lambda: row.get("team") == "x" and has("loss") and row["loss"] < 0.5,
            "metrics.acc > 0.3 and metrics.acc < 0.8": lambda: has("acc") and 0.3 < row["acc"] < 0.8,
            "metrics.loss > 0.1": lambda: has("loss") and row["loss"] > 0.1,
        }
        return bool(checks[filter]())

    field, _, direction = order.partition(" ")
    key = field.split(".", 1)[1]
    matching = [run for run, row in truth.items() if keep(row)]
    # NULLS LAST, then newest first, then id: the store's documented order
    present = [r for r in matching if key in truth[r]]
    absent = [r for r in matching if key not in truth[r]]
    tie = lambda r: (-start[r], r)  # noqa: E731
    present.sort(key=tie)
    present.sort(key=lambda r: truth[r][key], reverse=direction == "desc")  # type: ignore[arg-type,return-value]
    absent.sort(key=tie)
    assert found == present + absent


def test_deleted_runs_are_hidden_until_restored(store: Store) -> None:
    run = _run(store)
    with store.write() as conn:
        store.runs.set_deleted(conn, [run], True)
    with store.read() as conn:
        assert search_runs(conn) == []
        assert len(search_runs(conn, include_deleted=True)) == 1
    with store.write() as conn:
        store.runs.set_deleted(conn, [run], False)
    with store.read() as conn:
        assert len(search_runs(conn)) == 1


def test_purge_removes_rows_and_keeps_children(store: Store) -> None:
    parent = _run(store)
    with store.write() as conn:
        exp = store.experiments.get_or_create(conn, "exp")
        child = store.runs.create(conn, exp, parent_id=parent)
        store.runs.log_params(conn, parent, {"a": 1})
        store.metrics.write(conn, [(parent, "m", 1.0, 0, 1)])
        store.runs.purge(conn, [parent])
    with store.read() as conn:
        assert not store.runs.exists(conn, parent)
        assert store.runs.get(conn, child).parent_id is None
        assert store.metrics.count(conn, parent) == 0
