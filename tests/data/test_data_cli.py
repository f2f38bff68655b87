from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from conveyor.cli import app

runner = CliRunner()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_show_get_diff(project: Path) -> None:
    folder = project / "imgs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    assert "added data:/imgs@1" in _ok("data", "add", "imgs", "--name", "imgs")
    assert "unchanged: data:/imgs@1" in _ok("data", "add", "imgs", "--name", "imgs")
    (folder / "c.txt").write_text("C")
    info = json.loads(_ok("data", "add", "imgs", "--name", "imgs", "--json"))
    assert (info["version"], info["created"], info["file_count"]) == (2, True, 3)
    listed = json.loads(_ok("data", "list", "--json"))
    assert [(d["name"], d["version"]) for d in listed] == [("imgs", 2)]
    assert "sub/b.txt" in _ok("data", "show", "imgs@1")
    shown = json.loads(_ok("data", "show", "data:/imgs", "--json"))
    assert [f["path"] for f in shown["files"]] == ["a.txt", "c.txt", "sub/b.txt"] and shown["versions"] == [1, 2]
    assert "+ c.txt" in _ok("data", "diff", "imgs@1", "imgs@2")
    _ok("data", "get", "imgs@1", "checkout")
    assert sorted(p.name for p in (project / "checkout").rglob("*.txt")) == ["a.txt", "b.txt"]
    assert "imgs" in _ok("data", "list")


def test_validate_and_schema_exit_codes(project: Path) -> None:
    base = (project / "conveyor.toml").read_text()  # remote mode: keep the [server] table
    (project / "v1.csv").write_text("age,color\n30,red\n40,blue\n")
    (project / "v2.csv").write_text("age,color\nold,red\n40,green\n")
    _ok("data", "add", "v1.csv", "--name", "people")
    _ok("data", "add", "v2.csv", "--name", "people")
    result = runner.invoke(app, ["data", "validate", "people@2", "--against", "people@1", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    kinds = {(a["column"], a["kind"]) for a in report["anomalies"]}
    assert kinds == {("age", "type_change"), ("color", "new_category")} and report["failed"]
    assert "type_change" in runner.invoke(app, ["data", "validate", "people@2"]).output
    # warnings only: exit 0 unless --fail-on warning
    (project / "v3.csv").write_text("age,color\n30,red\n40,green\n")
    _ok("data", "add", "v3.csv", "--name", "people")
    assert runner.invoke(app, ["data", "validate", "people@3", "--against", "people@1"]).exit_code == 0
    assert runner.invoke(app, ["data", "validate", "people@3", "--against", "people@1", "--fail-on", "warning"]).exit_code == 1
    (project / "conveyor.toml").write_text(base + '[data]\nfail_on = "warning"\n')
    assert runner.invoke(app, ["data", "validate", "people@3", "--against", "people@1"]).exit_code == 1
    _ok("data", "schema", "people@1", "--out", "schema.toml")
    edited = (project / "schema.toml").read_text().replace('"blue",', '"blue",\n    "green",')
    (project / "schema.toml").write_text(edited)
    (project / "conveyor.toml").write_text(base)
    assert runner.invoke(app, ["data", "validate", "people@3", "--schema", "schema.toml"]).exit_code == 0
    assert 'type = "int"' in _ok("data", "schema", "people@1")


def test_errors_map_to_exit_codes(project: Path, write_csv: Callable[[str, str], Path]) -> None:
    missing = runner.invoke(app, ["data", "add", "nope.csv", "--name", "x"])
    assert missing.exit_code == 3 and "nope.csv" in missing.output
    assert runner.invoke(app, ["data", "show", "x@1"]).exit_code == 3
    assert runner.invoke(app, ["data", "add", ".", "--name", "bad name"]).exit_code == 2
    assert runner.invoke(app, ["data", "show", "x@zero"]).exit_code == 2
    (project / "conveyor.toml").write_text((project / "conveyor.toml").read_text() + "[data]\nhash_workers = 0\n")
    bad = runner.invoke(app, ["data", "add", "conveyor.toml", "--name", "x"])
    assert bad.exit_code == 2 and "hash_workers" in bad.output


def test_status_without_a_name_compares_with_the_data_set_last_added_from_the_folder(project: Path) -> None:
    """Both modes: the client records which data set a folder was last added to, so
    `data status PATH` needs no --name (remote mode cannot ask the server's SQLite file)."""
    folder = project / "imgs"
    folder.mkdir()
    (folder / "a.txt").write_text("A")
    _ok("data", "add", "imgs", "--name", "first")
    assert json.loads(_ok("data", "status", "imgs", "--json"))["ref"] == "data:/first@1"
    _ok("data", "add", "imgs", "--name", "second")  # the last add wins
    found = json.loads(_ok("data", "status", "imgs", "--json"))
    assert (found["name"], found["state"]) == ("second", "unchanged")
    (folder / "a.txt").write_text("AA")
    (folder / "b.txt").write_text("B")
    found = json.loads(_ok("data", "status", "imgs", "--json"))
    assert (found["name"], found["state"]) == ("second", "changed")
    assert (found["modified"], found["added"]) == (["a.txt"], ["b.txt"])
    other = project / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    found = json.loads(_ok("data", "status", "other", "--json"))
    assert (found["name"], found["state"], found["added"]) == (None, "new", ["x.txt"])
