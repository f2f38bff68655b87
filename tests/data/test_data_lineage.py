from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import conveyor.data as cd
from conveyor.data import Node
from conveyor.errors import InvalidInput


def test_record_is_idempotent_and_walks_both_ways(dt: Any) -> None:
    cd.record_lineage(dt, "data:/raw@1", "step:clean", "input")
    cd.record_lineage(dt, "step:clean", "data:/clean@1", "output")
    cd.record_lineage(dt, "data:/clean@1", "runs:/r1", "input")
    cd.record_lineage(dt, "data:/clean@1", "runs:/r1", "input")  # again: no duplicate

    graph = cd.lineage_graph(dt, "data:/clean@1")
    assert [str(e.upstream) for e in graph.upstream] == ["step:clean", "data:/raw@1"]
    assert [(str(e.downstream), e.relation) for e in graph.downstream] == [("runs:/r1", "input")]

    one = cd.lineage_graph(dt, "data:/clean@1", direction="up", depth=1)
    assert [str(e.upstream) for e in one.upstream] == ["step:clean"] and one.downstream == ()
    assert Node("dataset_version", "raw@1") in cd.lineage_graph(dt, "runs:/r1", direction="up").nodes


def test_edges_join_the_callers_transaction(embedded_only: None, dt: Any) -> None:
    with pytest.raises(RuntimeError), dt.store.write() as conn:
        cd.record_lineage(conn, "step:a", "step:b", "feeds")
        raise RuntimeError("roll back")
    assert cd.lineage_graph(dt, "step:a").downstream == ()


def test_cycles_terminate(dt: Any) -> None:
    cd.record_lineage(dt, "step:a", "step:b", "feeds")
    cd.record_lineage(dt, "step:b", "step:a", "feeds")
    graph = cd.lineage_graph(dt, "step:a")
    assert len(graph.downstream) == 2 and len(graph.upstream) == 2


def test_artifact_traces_back_to_run_commit_and_data(dt: Any, tmp_path: Path) -> None:
    run = dt.create_run("lineage", capture=False)
    with dt.server_tracker.store.write() as conn:  # a run that recorded its commit (behind the server)
        from sqlalchemy import update

        from conveyor.store import runs

        conn.execute(update(runs).where(runs.c.id == run.id).values(git_commit="c0ffee"))
    (tmp_path / "m.bin").write_bytes(b"model")
    dt.log_artifact(run.id, tmp_path / "m.bin", "model")
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    version = cd.add(table, name="train", tracker=dt)
    cd.log_input(version.ref, run.id, tracker=dt)

    graph = cd.lineage_graph(dt, f"runs:/{run.id}/model/m.bin", direction="up")
    found = {(str(e.upstream), e.relation, str(e.downstream)) for e in graph.upstream}
    assert (f"runs:/{run.id}", "produced", f"runs:/{run.id}/model/m.bin") in found
    assert ("commit:c0ffee", "code", f"runs:/{run.id}") in found
    assert ("data:/train@1", "input", f"runs:/{run.id}") in found
    down = cd.lineage_graph(dt, "data:/train", direction="down")  # no version: the latest
    assert f"runs:/{run.id}/model/m.bin" in {str(e.downstream) for e in down.downstream}


@pytest.mark.parametrize("bad", [{"relation": ""}, {"relation": "x" * 65}])
def test_bad_relation(dt: Any, bad: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as info:
        cd.record_lineage(dt, "step:a", "step:b", **bad)
    assert info.value.field == "relation"


def test_bad_direction_and_depth(dt: Any) -> None:
    with pytest.raises(InvalidInput):
        cd.lineage_graph(dt, "step:a", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        cd.lineage_graph(dt, "step:a", depth=0)


def test_log_input_needs_a_run(project: Path) -> None:
    (project / "t.csv").write_text("a\n1\n")
    cd.add("t.csv", name="t")
    with pytest.raises(InvalidInput, match="no run"):
        cd.log_input("t")


def test_log_input_uses_the_active_run(project: Path) -> None:
    import conveyor

    (project / "t.csv").write_text("a\n1\n")
    cd.add("t.csv", name="t")
    with conveyor.start_run(experiment="e") as run:
        edge = cd.log_input("t@1")
    assert edge.downstream == Node("run", run.id)


def test_cli_prints_trees(project: Path) -> None:
    from conveyor.cli import app

    cd.record_lineage(None, "data:/raw@1", "runs:/r1", "input")
    cd.record_lineage(None, "runs:/r1", "models:/churn/1", "registered")
    result = CliRunner().invoke(app, ["lineage", "runs:/r1"])
    assert result.exit_code == 0, result.output
    assert "data:/raw@1" in result.output and "models:/churn/1" in result.output
    result = CliRunner().invoke(app, ["lineage", "models:/churn/1", "--json", "-d", "up"])
    assert result.exit_code == 0
    assert '"data:/raw@1"' in result.output
    assert CliRunner().invoke(app, ["lineage", "nonsense"]).exit_code == 2
