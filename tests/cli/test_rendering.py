"""What the command line prints: bracketed words of help texts and hints survive rich
markup, user names are printed literally, times are local ISO (issue 11, items 12 and 13)."""

from __future__ import annotations

import re
from typing import Any

import click
import pytest
import typer.main
from typer.testing import CliRunner

from conveyor.cli import _GROUPS, app

runner = CliRunner()


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        out += _walk(sub, (*path, name))
    return out


def _every_command() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    found = []
    ctx = click.Context(root)
    for name in root.list_commands(ctx):  # type: ignore[attr-defined]
        found += _walk(root.get_command(ctx, name), (name,))  # type: ignore[attr-defined]
    return found


def _bracketed(text: str | None) -> list[str]:
    return re.findall(r"\[[^\]\s]+\][^\s,.)]*", text or "")


def test_every_bracketed_word_of_every_help_text_is_printed() -> None:
    """Help as users see it (rich panels, wide terminal): "[serving] max_batch_size" and
    "conveyor-mlops[onnx]" used to lose their brackets to rich markup."""
    checked = 0
    for path, command in _every_command():
        texts = [command.help] + [getattr(p, "help", None) for p in command.params]
        words = [w for t in texts for w in _bracketed(t)]
        if not words:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        for word in words:
            assert word.replace("\\", "") in result.output, (path, word, result.output)
            checked += 1
    assert checked >= 4  # [gates.<name>], [data] fail_on, [serving] max_batch_size, max_wait_ms


def test_root_help_lists_every_group_with_brackets_intact() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for row in _GROUPS:
        if len(row) == 3:
            first = row[2].splitlines()[0]
            assert first.split(":")[0] in result.output


def test_a_missing_extra_hint_keeps_its_brackets(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint of a PostgreSQL URL without psycopg names the extra in full."""
    import importlib.util

    real = importlib.util.find_spec

    def no_psycopg(name: str, *args: Any) -> Any:
        return None if name == "psycopg" else real(name, *args)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVEYOR_STORE_METADATA_URL", "postgresql://u@127.0.0.1:1/db")
    monkeypatch.setattr(importlib.util, "find_spec", no_psycopg)
    result = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "pip install 'conveyor-mlops[postgres]'" in result.output


def test_models_show_fields_read_as_text() -> None:
    from datetime import datetime

    from conveyor.cli._models import _shown

    ms = 1_764_590_709_000
    local = datetime.fromtimestamp(ms / 1000).astimezone()
    assert _shown("created_at", ms) == local.isoformat(timespec="seconds")
    assert _shown("aliases", {"champion": 3, "challenger": 4}) == "challenger → 4, champion → 3"
    assert _shown("tags", {}) == "" and _shown("run_id", None) == ""
    assert _shown("aliases", ["champion", "shadow"]) == "champion, shadow"


def test_models_show_prints_local_iso_times_and_aliases(project: Any) -> None:
    import conveyor
    from conveyor.tracking import set_tracker

    import numpy as np
    from sklearn.linear_model import LinearRegression

    import conveyor.models

    X = np.arange(12, dtype=float).reshape(6, 2)
    with conveyor.start_run(experiment="cli") as run:  # registering loads the package: a real one
        conveyor.models.log(LinearRegression().fit(X, X.sum(axis=1)), "model", input_example=X[:2])
    set_tracker(None)
    assert runner.invoke(app, ["models", "register", f"runs:/{run.id}/model", "churn"]).exit_code == 0
    assert runner.invoke(app, ["models", "alias", "churn", "champion", "1"]).exit_code == 0
    out = runner.invoke(app, ["models", "show", "churn"], env={"COLUMNS": "300"}).output
    assert "champion → 1" in out and "{'champion'" not in out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", out), out
    assert not re.search(r"\b1[6-9]\d{11}\b", out), out  # no epoch milliseconds


def test_every_documented_sub_package_is_a_lazy_attribute() -> None:
    import subprocess
    import sys

    code = (
        "import sys, conveyor\n"
        "assert 'conveyor.data' not in sys.modules and 'pandas' not in sys.modules\n"
        "for name in ('data', 'pipelines', 'models', 'registry', 'gates', 'serving', 'monitoring', 'ci', 'tracking'):\n"
        "    assert getattr(conveyor, name).__name__ == 'conveyor.' + name\n"
        "assert callable(conveyor.data.add) and name in dir(conveyor)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_data_validate_takes_a_file_that_is_not_versioned(project: Any) -> None:
    import conveyor

    (project / "train.csv").write_text("age,plan\n31,a\n42,b\n55,a\n", encoding="utf-8")
    conveyor.data.add(project / "train.csv", name="train")
    (project / "new.csv").write_text("age,plan\nold,a\n40,b\n", encoding="utf-8")
    (project / "same.csv").write_text("age,plan\n33,a\n44,b\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", "new.csv", "--against", "train@1"], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "type_change" in result.output, result.output
    result = runner.invoke(app, ["data", "validate", "same.csv", "--against", "train@1"])
    assert result.exit_code == 0 and "no anomalies" in result.output, result.output
    result = runner.invoke(app, ["data", "validate", "new.csv"])
    assert result.exit_code == 2 and "--against" in result.output, result.output


def test_quickstart_next_commands_name_the_conveyor_that_ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """With the venv not on PATH, the printed command is the full path of its script."""
    import sys
    from pathlib import Path

    from conveyor.quickstart._run import conveyor_command

    monkeypatch.setenv("PATH", str(tmp_path))
    script = Path(sys.executable).with_name("conveyor")
    expected = str(script) if script.is_file() else f"{sys.executable} -m conveyor"
    assert conveyor_command() == expected
    monkeypatch.setenv("PATH", str(script.parent))
    if script.is_file():
        assert conveyor_command() == "conveyor"
