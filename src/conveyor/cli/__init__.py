"""The ``conveyor`` command line (Typer + rich). Each command group lives in its own module;
``main`` is the console-script entry point.

Start-up is lazy: the root knows every top-level command's name and one-line help from
``_GROUPS`` and imports a module only when one of its commands runs (or is completed on
the shell). ``conveyor --help`` imports none of them, ``conveyor runs list`` only
``_tracking``.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core
import typer.main

from conveyor._version import __version__

# One row per top-level command: (module in conveyor.cli, command name, its help as the
# module defines it). The module's ``register(app)`` (or its ``app``, added under the
# name) defines the real command; the help here only feeds ``conveyor --help`` and shell
# completion, and tests/cli checks that it matches. A row without help still works; its
# module is then imported to list it. Rows are in the order ``conveyor --help`` shows.
_GROUPS: list[tuple[str, str] | tuple[str, str, str]] = [
    ("_project", "init", "Write conveyor.toml, create .conveyor/ and initialise the stores."),
    ("_project", "doctor", "Verify that every referenced artifact exists and matches its digest; list orphans."),
    ("_project", "gc", "Purge deleted runs and remove artifact objects that nothing references any more."),
    ("_project", "quickstart", "Run the whole loop on bundled data in a new folder: train, track, compare."),
    ("_data", "lineage", "Print what is upstream and downstream of REF as trees."),
    ("_serve", "serve", "Serve models over Open Inference Protocol v2 and MLflow's /invocations."),
    ("_serve", "build", ("Write a Docker build context (Dockerfile, pinned requirements, the model) and a\n"
                         "Kubernetes manifest for one registered model version.")),
    ("_project", "db", "Metadata database schema."),
    ("_tracking", "experiments", "Experiments: named groups of runs."),
    ("_tracking", "runs", "Runs: list, inspect, compare, delete."),
    ("_tracking", "artifacts", "Artifacts logged to runs."),
    ("_pipeline", "pipeline", "Run cached pipelines of Python steps, locally or on Ray."),
    ("_data", "data", "Versioned data sets: add, list, show, diff, get, validate, schema."),
    ("_models", "models", "Registered models: versions, aliases (champion…), audit history, model cards."),
    ("_ci", "ci", "CI/CD for models: gate candidates on pull requests, promote on main."),
    ("_monitor", "monitor", "Drift, data quality, live performance, alerts and retraining."),
    ("_score", "score", "The ML Test Score of this project, computed from what its stores prove."),
    ("_sync", "sync", "Replay metric points, run ends and prediction-log rows spooled while the stores were unreachable."),
    ("_server", "server", "Run the tracking server: MLflow's REST API, conveyor's /api/v1, health, version and Prometheus metrics."),
    ("_server", "tokens", "API tokens of `conveyor server` users: create (shown once), list, revoke."),
    ("_server", "users", "Users of `conveyor server`: add, list, disable, enable, set a password."),
    ("_server", "roles", "Roles of users on experiments, registered models and data sets: grant, revoke, list."),
    ("_server", "ui", "Open the web UI over this project: a server on 127.0.0.1 and a browser tab."),
    ("_import", "import", "Move in from other tools: copy an MLflow server or store into this project."),
]


def _module_commands(module_name: str) -> dict[str, Any]:
    """The click commands a ``conveyor.cli`` module registers, by top-level name."""
    module = importlib.import_module(f"conveyor.cli.{module_name}")
    scratch = typer.Typer()
    scratch.callback()(lambda: None)  # always a group, even for a module with one command
    if hasattr(module, "register"):
        module.register(scratch)
    else:
        name = next(row[1] for row in _GROUPS if row[0] == module_name)
        scratch.add_typer(module.app, name=name)
    group = typer.main.get_command(scratch)
    commands = dict(group.commands)  # type: ignore[attr-defined]
    for command in commands.values():
        _literal_help(command)
    return commands


def _literal_help(command: Any) -> None:
    """Typer renders help as rich markup, which swallowed bracketed words ("[serving]
    max_batch_size", "conveyor-mlops[onnx]"): escape every help text once, recursively."""
    from rich.markup import escape

    for obj in (command, *getattr(command, "params", ())):
        for attr in ("help", "short_help"):
            text = getattr(obj, attr, None)
            if isinstance(text, str) and "[" in text and not getattr(obj, "_conveyor_escaped", False):
                setattr(obj, attr, escape(text))
        obj._conveyor_escaped = True
    for sub in getattr(command, "commands", {}).values():
        _literal_help(sub)


class LazyGroup(typer.core.TyperGroup):
    """The root group: ``_GROUPS`` rows become commands on first use, one module at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rows = {row[1]: row for row in _GROUPS}
        self._loaded: dict[str, dict[str, Any]] = {}
        self._listing = 0  # > 0 while help or completion only needs names and help

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self._rows if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self._rows:
            return super().get_command(ctx, cmd_name)
        row = self._rows[cmd_name]
        if self._listing and len(row) == 3:
            from rich.markup import escape

            return typer.core.TyperCommand(cmd_name, help=escape(row[2]))
        if row[0] not in self._loaded:
            self._loaded[row[0]] = _module_commands(row[0])
        return self._loaded[row[0]].get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing += 1
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing -= 1

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        self._listing += 1
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing -= 1

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # TyperGroup suggests near names from ``self.commands`` only, which holds none of
        # the lazy rows: suggest from every name instead ("No such command 'rnus'. Did
        # you mean 'runs'?").
        try:
            return self._click_resolve_command(ctx, args)
        except typer.core._click.exceptions.UsageError as error:
            if self.suggest_commands and args:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{m!r}" for m in matches)
                    error.message = f"{error.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


app = typer.Typer(
    name="conveyor",
    help="conveyor: track, version, orchestrate, gate, serve and monitor ML models.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """conveyor: the whole MLOps loop in one pip install."""


def main() -> None:
    app()


__all__ = ["LazyGroup", "app", "main"]
