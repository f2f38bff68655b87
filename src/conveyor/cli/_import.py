"""``conveyor import mlflow``: move in from MLflow (a tracking server, a file store or a SQLite
store) with a progress bar and a summary table."""

from __future__ import annotations

from typing import Any

import typer

from conveyor.cli._common import console, err_console, esc, handle_errors, print_json, tracker

import_app = typer.Typer(help="Move in from other tools: copy an MLflow server or store into this project.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")


@import_app.command("mlflow")
@handle_errors
def mlflow(
    source: str = typer.Option(..., "--from", metavar="URI",
                               help="An MLflow tracking server (http(s)://host:5000), a file store folder "
                                    "(./mlruns) or a SQLite store (sqlite:///path/mlflow.db)."),
    experiments: list[str] = typer.Option([], "--experiment", "-e", metavar="NAME",
                                          help="Copy only this experiment (name or MLflow id); repeatable. "
                                               "Registered model versions of other runs are then left out."),
    artifacts_dir: str = typer.Option(None, "--artifacts-dir", metavar="DIR",
                                      help="For a local store whose runs were logged through `mlflow server`: the "
                                           "server's --artifacts-destination folder (default: mlartifacts/ beside "
                                           "the store)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (no progress bar)."),
) -> None:
    """Copy experiments, runs (full metric histories, params, tags, artifacts) and registered models
    with versions and aliases from MLflow into this project's stores. Running it again copies
    nothing twice; versions that are not conveyor model packages are listed, not registered."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from conveyor.importers import Progress as Steps
    from conveyor.importers import import_mlflow

    bar = Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), console=err_console, transient=True, disable=as_json)

    class Shown(Steps):
        task: Any = None

        def start(self, total: int) -> None:
            self.task = bar.add_task("", total=total)

        def advance(self, label: str) -> None:
            bar.update(self.task, advance=1, description=esc(label[:60]))

    with tracker(create=False) as opened, bar:
        report = import_mlflow(opened, source, experiments=experiments, artifacts_dir=artifacts_dir, progress=Shown())
    if as_json:
        print_json(report.as_dict())
        return
    _summary(report)


def _summary(report: Any) -> None:
    from rich.table import Table

    table = Table(title=f"imported from {esc(report.source)} ({report.kind})", show_header=True)
    table.add_column("what")
    table.add_column("copied", justify="right")
    table.add_column("already here", justify="right")
    table.add_row("experiments", str(report.experiments_created), str(report.experiments_existing))
    table.add_row("runs", str(report.runs_copied + report.runs_resumed), str(report.runs_already_imported))
    table.add_row("metric points", f"{report.metric_points:,}", "")
    table.add_row("params / tags", f"{report.params:,} / {report.tags:,}", "")
    table.add_row("artifact files", f"{report.artifact_files:,} ({report.artifact_bytes / 2**20:,.1f} MiB)", "")
    table.add_row("MLflow 3 logged models", str(report.logged_models_copied), "")
    table.add_row("model versions registered", str(report.versions_registered), str(report.versions_already_imported))
    table.add_row("aliases set", str(report.aliases_set), "")
    console.print(table)
    if report.not_registered:
        console.print(f"[yellow]{len(report.not_registered)} model version(s) not registered[/] (their files are "
                      "run artifacts; the run's tag mlflow.registered_model/<name>/<version> keeps the version's "
                      "source, stage, aliases and tags):")
        for item in report.not_registered:
            aliases = f" (aliases: {', '.join(item.aliases)})" if item.aliases else ""
            where = f" → runs:/{item.run_id}/{item.artifact_path}" if item.run_id else ""
            console.print(f"  {esc(item.model)} v{item.version}{esc(aliases)}{esc(where)}: {esc(item.reason)}",
                          highlight=False)
        console.print("  to register one, save it as a conveyor package (conveyor.models.log) and "
                      "`conveyor models` / conveyor.registry.register it")
    if report.refused:
        console.print(f"[red]{len(report.refused)} artifact path(s) refused[/] (never read or written):")
        for item in report.refused[:50]:
            console.print(f"  run {item['run_id']}: {esc(item['path'])}: {esc(item['reason'])}", highlight=False)
    for problem in report.problems:
        console.print(f"[yellow]note:[/] {esc(problem)}", highlight=False)
