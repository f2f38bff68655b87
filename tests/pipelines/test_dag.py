"""Building DAGs: calling a pipeline runs nothing and finds bad graphs before anything runs."""

from __future__ import annotations

import pytest

from conveyor.errors import InvalidInput
from conveyor.pipelines import Graph, Handle, pipeline, step
from conveyor.pipelines._dag import coerce_params


@step
def load(n: int = 3) -> list:
    return list(range(n))


@step(outputs=("train", "test"))
def split(rows: list, ratio: float = 0.5) -> tuple:
    cut = int(len(rows) * ratio)
    return rows[:cut], rows[cut:]


@step
def fit(train: list, C: float = 1.0) -> dict:
    return {"n": len(train), "C": C}


@pipeline
def flow(C: float = 1.0, n: int = 4):
    train, test = split(load(n=n))
    fit(train, C=C)
    fit(test, C=C)


def test_calling_a_pipeline_builds_the_graph_without_running_steps() -> None:
    graph = flow(C=0.5)
    assert isinstance(graph, Graph)
    assert graph.order() == ["load", "split", "fit", "fit_2"]
    assert graph.nodes["fit"].inputs["train"] == Handle("split", "train", id(graph))
    assert graph.nodes["fit_2"].inputs["train"].output == "test"
    assert graph.nodes["fit"].params == {"C": 0.5}
    assert graph.params == {"C": 0.5, "n": 4}
    assert graph.downstream("split") == {"fit", "fit_2"}
    described = graph.describe()
    assert described["steps"][1]["outputs"] == ["train", "test"]


def test_a_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    assert load(n=2) == [0, 1]
    assert split([1, 2, 3, 4]) == ([1, 2], [3, 4])


def test_a_missing_input_fails_before_anything_runs() -> None:
    @pipeline
    def broken():
        fit()  # no `train`

    with pytest.raises(InvalidInput, match="fit.*missing a required argument: 'train'"):
        broken()


def test_a_cycle_is_reported_with_its_path() -> None:
    @pipeline
    def cyclic():
        a = load(after=["fit"])
        fit(a)

    with pytest.raises(InvalidInput, match="cycle: load -> fit -> load|cycle: fit -> load -> fit"):
        cyclic()


def test_an_unknown_upstream_step_is_a_missing_input() -> None:
    @pipeline
    def dangling():
        load(after=["nowhere"])

    with pytest.raises(InvalidInput, match="depends on 'nowhere'"):
        dangling()


def test_parameters_must_be_json_values() -> None:
    @pipeline
    def bad():
        fit([1], C=object())

    with pytest.raises(InvalidInput, match="parameter 'C' of step 'fit'"):
        bad()


def test_unknown_pipeline_parameter_is_named() -> None:
    with pytest.raises(InvalidInput, match="no parameter 'D'"):
        flow(D=1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"C": "0.1"}, {"C": 0.1}), ({"n": "7"}, {"n": 7})],
)
def test_cli_parameters_take_the_pipeline_types(raw: dict, expected: dict) -> None:
    assert coerce_params(flow, raw) == expected


def test_cli_parameter_of_the_wrong_type_names_it() -> None:
    with pytest.raises(InvalidInput, match="'n' must be a int"):
        coerce_params(flow, {"n": "seven"})


def test_bad_step_options_are_refused() -> None:
    with pytest.raises(InvalidInput):
        step(outputs=("a", "a"))
    with pytest.raises(InvalidInput):
        step(retries=-1)
