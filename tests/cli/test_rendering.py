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
