"""``conveyor ci``: gate a candidate in CI (report + exit code), promote on main, write workflows."""

from __future__ import annotations

from pathlib import Path

import typer

from conveyor.cli._common import (
    EXIT_PROBLEMS,
    apply_trust,
    console,
    esc,
    handle_errors,
    print_json,
    settings,
    tracker,
    trust_option,
)

app = typer.Typer(help="CI/CD for models: gate candidates on pull requests, promote on main.", no_args_is_help=True)


@app.command()
@handle_errors
def check(
    pipeline: str = typer.Option(None, "--pipeline", help="module:pipeline to run; the candidate it declares is gated."),
    param: list[str] = typer.Option([], "-p", "--param", help="KEY=VALUE for --pipeline, repeatable."),
    candidate: str = typer.Option(
        None, "--candidate", help="runs:/<id>/<path>, runs:/<pipeline run> (its candidate) or models:/name/N."),
    gate: str = typer.Option("default", "--gate", help="Gate [gates.<name>] of conveyor.toml."),
    data: str = typer.Option(None, "--data", help="Evaluation data (data:/name@version or a file); default: the gate's."),
    report: Path = typer.Option(None, "--report", help="Write the Markdown report here instead of stdout."),
    as_json: bool = typer.Option(False, "--json", help="Print the evaluation as JSON."),
    trust: list[str] = trust_option(),
) -> None:
    """Gate a candidate against the champion; exit 1 when a check fails."""
    from conveyor.ci import ci_check
    from conveyor.errors import InvalidInput
    from conveyor.registry import Registry

    if candidate is None and pipeline is None:
        raise InvalidInput("give --candidate runs:/<id>/<path> or --pipeline module:pipeline", field="candidate")
    apply_trust(trust)
    params: dict[str, str] = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"parameter {item!r} is not KEY=VALUE", field="param", value=item)
        params[key.strip()] = value
    with tracker() as opened:
        result = ci_check(Registry(opened), gate=gate, candidate=candidate, pipeline=pipeline, data=data,
                          settings=settings(), params=params)
    if report is not None:
        report.write_text(result.report, encoding="utf-8")
        console.print(f"{'passed' if result.passed else 'FAILED'}: report written to {esc(report)}")
    if as_json:
        print_json(result.evaluation.to_dict())
    elif report is None:
        typer.echo(result.report)
    if not result.passed:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command()
@handle_errors
def promote(
    gate: str = typer.Option("default", "--gate", help="Gate whose model is promoted."),
    version: int = typer.Option(None, "--version", help="Version (default: newest that passed the gate)."),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """The CD step: move the alias to the version that passed its gate (recorded)."""
    from conveyor.ci import ci_promote
    from conveyor.registry import Registry

    with tracker() as opened:
        event = ci_promote(Registry(opened), gate=gate, version=version, alias=alias, settings=settings())
    console.print(f"{esc(alias)}: {esc(event.from_value or '∅')} → [bold]{esc(event.to_value)}[/]")


@app.command()
@handle_errors
def init(
    provider: str = typer.Option(..., "--provider", help="github or gitlab."),
    pipeline: str = typer.Option("train:pipeline", "--pipeline", help="module:pipeline the workflow runs."),
    gate: str = typer.Option("default", "--gate"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing workflow file."),
) -> None:
    """Write a workflow that gates pull requests and promotes on the main branch."""
    from conveyor.ci import write_workflow

    path = write_workflow(settings().root, provider, pipeline=pipeline, gate=gate, force=force)
    console.print(f"wrote {esc(path)}")


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="ci")
