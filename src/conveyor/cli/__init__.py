"""The ``conveyor`` command line (Typer + rich). Each command group lives in its own module;
``main`` is the console-script entry point."""

from __future__ import annotations

import typer

from conveyor._version import __version__
from conveyor.cli import _project, _tracking

app = typer.Typer(
    name="conveyor",
    help="conveyor: track, version, orchestrate, gate, serve and monitor ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_project.register(app)
_tracking.register(app)

# Command groups of later layers register here, one module each (see _GROUPS).
_GROUPS: list[tuple[str, str]] = [
    ("_pipeline", "pipeline"),
    ("_data", "data"),
    ("_serve", "serve"),
    ("_models", "models"),
    ("_ci", "ci"),
    ("_monitor", "monitor"),
]


def _register_groups() -> None:
    import importlib

    for module_name, group in _GROUPS:
        module = importlib.import_module(f"conveyor.cli.{module_name}")
        module.register(app) if hasattr(module, "register") else app.add_typer(module.app, name=group)


_register_groups()


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


__all__ = ["app", "main"]
