"""The command line, in-process through Typer's runner, on a real project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import conveyor
from conveyor.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def tracked(project: Path) -> dict[str, str]:
    """Three finished runs with params, metrics and an artifact."""
    ids = {}
    for name, acc, model in (("a", 0.8, "lr"), ("b", 0.95, "rf"), ("c", 0.9, "rf")):
        with conveyor.start_run(experiment="cli", name=name) as run:
            conveyor.log_params({"model": model, "depth": 3})
            conveyor.log_metric("acc", acc)
            conveyor.log_text(f"model {name}", "model/notes.txt")
        ids[name] = run.id
    conveyor.tracking.set_tracker(None)
    return ids


def test_init_creates_project_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = invoke("init")
    assert code == 0, out
    assert (tmp_path / "conveyor.toml").exists() and (tmp_path / ".conveyor" / "conveyor.db").exists()
    code, out = invoke("init")
    assert code == 0 and "keeping it" in out
    code, out = invoke("db", "upgrade")
    assert code == 0 and "→" in out


def test_commands_without_a_project_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = invoke("runs", "list")
    assert code == 4 and "conveyor init" in out


def test_runs_list_filter_and_json(tracked: dict[str, str]) -> None:
    code, out = invoke("runs", "list", "--filter", "params.model = 'rf'", "--order-by", "metrics.acc desc", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert [r["name"] for r in data] == ["b", "c"]
    code, out = invoke("runs", "list", "-e", "cli")
    assert code == 0 and "FINISHED" in out and "acc" in out


def test_bad_filter_points_at_the_position(tracked: dict[str, str]) -> None:
    code, out = invoke("runs", "list", "--filter", "metrics.acc >> 1")
    assert code == 2
    assert "position 13" in out


def test_show_compare_and_prefixes(tracked: dict[str, str]) -> None:
    code, out = invoke("runs", "show", tracked["b"][:8])
    assert code == 0 and "model/notes.txt" in out and "rf" in out
    code, out = invoke("runs", "show", tracked["b"], "--json")
    assert json.loads(out)["metrics"] == {"acc": 0.95}
    code, out = invoke("runs", "compare", tracked["a"], tracked["b"], "--json")
    rows = json.loads(out)["rows"]
    assert rows["params.model"] == ["lr", "rf"] and rows["metrics.acc"] == [0.8, 0.95]
    code, out = invoke("runs", "compare", tracked["a"], tracked["b"])
    assert code == 0 and "differs" in out
    code, out = invoke("runs", "show", "ffffffff")
    assert code == 3 and "not found" in out


def test_artifacts_list_and_get(tracked: dict[str, str], tmp_path: Path) -> None:
    code, out = invoke("artifacts", "list", tracked["a"], "--json")
    assert [a["path"] for a in json.loads(out)] == ["model/notes.txt"]
    code, out = invoke("artifacts", "get", tracked["a"], "model/notes.txt", "--dest", str(tmp_path))
    assert code == 0 and (tmp_path / "notes.txt").read_text() == "model a"


def test_experiments_list(tracked: dict[str, str]) -> None:
    code, out = invoke("experiments", "list", "--json")
    assert code == 0 and json.loads(out)[0] | {"created_at": 0} == {
        "id": 1, "name": "cli", "runs": 3, "archived": False, "description": "", "created_at": 0,
    }


def test_doctor_finds_corruption(tracked: dict[str, str], project: Path) -> None:
    code, out = invoke("doctor", "--json")
    assert code == 0 and json.loads(out)["healthy"] is True
    objects = [p for p in (project / ".conveyor" / "artifacts").glob("??/*")]
    victim = next(p for p in objects if p.read_bytes() == b"model b")
    victim.chmod(0o644)
    victim.write_bytes(b"model B")
    code, out = invoke("doctor", "--json")
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False
    assert len(report["corrupt"]) == 1 and report["corrupt"][0].endswith(victim.parent.name + victim.name)
    victim.unlink()
    code, out = invoke("doctor")
    assert code == 1 and "missing" in out


def test_delete_restore_and_gc(tracked: dict[str, str], project: Path) -> None:
    code, out = invoke("runs", "delete", tracked["a"])
    assert code == 0
    code, out = invoke("runs", "list", "--json")
    assert {r["name"] for r in json.loads(out)} == {"b", "c"}
    code, out = invoke("runs", "restore", tracked["a"])
    code, out = invoke("runs", "list", "--json")
    assert {r["name"] for r in json.loads(out)} == {"a", "b", "c"}
    invoke("runs", "delete", tracked["a"])
    code, out = invoke("gc", "--dry-run", "--grace", "0", "--json")
    dry = json.loads(out)
    assert dry["purged_runs"] == [tracked["a"]] and len(dry["removed"]) == 1
    code, out = invoke("gc", "--grace", "0", "--json")
    assert json.loads(out)["removed"] == dry["removed"]
    code, out = invoke("doctor", "--json")
    assert code == 0 and json.loads(out)["orphans"] == []
    code, out = invoke("runs", "show", tracked["a"])
    assert code == 3


def test_console_script_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run([sys.executable, "-m", "conveyor", "--version"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.startswith("conveyor ")
