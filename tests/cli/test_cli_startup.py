"""The command line imports only what a command needs: ``conveyor --help`` no group module,
``conveyor <group> …`` that group's module alone. Checked through ``sys.modules`` of a fresh
interpreter, never through timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conveyor.cli import _GROUPS, _module_commands, app

# Prints the conveyor.cli.* modules loaded after running the CLI with the given arguments.
_PROBE = """
import json, sys
from conveyor.cli import main
sys.argv = ["conveyor", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("\\n@@" + json.dumps(sorted(m for m in sys.modules if m.startswith("conveyor.cli."))))
"""

_MODULES = sorted({row[0] for row in _GROUPS})


def _loaded(args: list[str], env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        check=False, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    output, _, modules = done.stdout.rpartition("\n@@")
    return output, {m.removeprefix("conveyor.cli.") for m in json.loads(modules)}


def test_help_lists_every_command_without_importing_any_group() -> None:
    output, loaded = _loaded(["--help"])
    for _module, name, *_help in _GROUPS:
        assert f" {name} " in output, name
    assert "Versioned data sets" in output and "Runs: list, inspect, compare, delete." in output
    assert loaded == set()


# One top-level name per module: invoking it loads that module (and the shared helpers) only.
_ONE_NAME = {module: next(row[1] for row in _GROUPS if row[0] == module) for module in _MODULES}


@pytest.mark.parametrize("module", _MODULES)
def test_a_group_imports_only_its_own_module(module: str) -> None:
    name = _ONE_NAME[module]
    output, loaded = _loaded([name, "--help"])
    assert f"Usage: conveyor {name}" in output
    # _monitor's retrain loads _pipeline's helper inside the command, never at import.
    assert loaded - {"_common"} == {module}


def test_group_help_shows_its_commands() -> None:
    result = CliRunner().invoke(app, ["runs", "--help"])
    assert result.exit_code == 0
    for command in ("list", "show", "compare", "delete", "restore"):
        assert command in result.output


@pytest.mark.parametrize("module", _MODULES)
def test_the_help_table_matches_the_commands(module: str) -> None:
    commands = _module_commands(module)
    rows = {row[1]: row for row in _GROUPS if row[0] == module}
    assert set(rows) == set(commands), "every top-level command of the module needs a row in _GROUPS"
    for name, row in rows.items():
        assert row[2:] == (commands[name].help,), name


def test_shell_completion_lists_top_level_names_without_imports() -> None:
    env = {"_CONVEYOR_COMPLETE": "complete_bash", "COMP_WORDS": "conveyor ru", "COMP_CWORD": "1"}
    output, loaded = _loaded([], env)
    assert output.split() == ["runs"]
    assert loaded == set()


def test_shell_completion_of_a_subcommand_loads_its_group() -> None:
    env = {"_CONVEYOR_COMPLETE": "complete_bash", "COMP_WORDS": "conveyor data li", "COMP_CWORD": "2"}
    output, loaded = _loaded([], env)
    assert output.split() == ["list"]
    assert loaded - {"_common"} == {"_data"}


def test_a_mistyped_command_still_gets_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["rnus"])
    assert result.exit_code == 2
    assert "Did you mean 'runs'?" in result.output


def test_version_needs_no_group() -> None:
    output, loaded = _loaded(["--version"])
    assert output.startswith("conveyor ")
    assert loaded == set()
