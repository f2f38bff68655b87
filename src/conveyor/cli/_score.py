"""``conveyor score``: the ML Test Score and MLOps maturity of the project, from evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from conveyor.cli._common import console, handle_errors, print_json, settings, tracker

app = typer.Typer(help="The ML Test Score of this project, computed from what its stores prove.",
                  invoke_without_command=True)

_MARK = {"automated": "[green]1[/]", "manual": "[yellow]½[/]", "missing": "[red]0[/]"}


@app.callback()
@handle_errors
def score(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the score, every test and its evidence as JSON."),
    html: Path = typer.Option(None, "--html", help="Also write a self-contained HTML report to this file."),
) -> None:
    """Score the project in the current folder: each of the 28 tests of Breck et al. (2017) is
    automated (1), manual (½) or missing (0), with its evidence; the final score is the
    minimum of the four section sums."""
    if ctx.invoked_subcommand is not None:
        return
    from conveyor.ci import ml_test_score

    with tracker() as opened:
        result = ml_test_score(opened, settings().root)
    if html is not None:
        from conveyor.ci import render_score_html

        html.write_text(render_score_html(result), encoding="utf-8")
    if as_json:
        print_json(result.to_dict())
        return
    _print(result)
    if html is not None:
        console.print(f"HTML report written to {html}", markup=False)


def _print(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("test", "", "evidence / how to earn it", title="ML Test Score (Breck et al. 2017)",
                  show_lines=True)
    for test in result.tests:
        lines = [escape(line) for line in test.evidence]
        if test.earn:
            lines.append(f"[dim]→ {escape(test.earn)}[/]")
        table.add_row(f"{test.id}\n[dim]{escape(test.title)}[/]", _MARK[test.status], "\n".join(lines) or "—")
    console.print(table)
    sums = " · ".join(f"{section} {points:g}" for section, points in result.sections.items())
    console.print(f"sections: {sums}", markup=False)
    console.print(f"[bold]final score {result.final:g}[/] (the minimum): {escape(result.band)}")
    console.print(f"Google MLOps level {result.google_level}: " + "; ".join(result.google_reasons), markup=False)
    console.print(f"Microsoft MLOps maturity level {result.microsoft_level}: " + "; ".join(result.microsoft_reasons),
                  markup=False)
    for note in result.ignored:
        console.print(f"[yellow]not counted:[/] {escape(note)}")


@app.command("record")
@handle_errors
def record(
    test: str = typer.Argument(..., help="Test id, e.g. 'Data 2' or 'Model 4'."),
    evidence: str = typer.Option(..., "--evidence", help="Where the documented result is (report, URL, ticket)."),
    ref: str = typer.Option(None, "--ref", help="runs:/<id> holding the result; deleting it withdraws the point."),
) -> None:
    """Record a test done by hand with a documented result: it counts ½ point."""
    from conveyor.ci import record_evidence
    from conveyor.ci._rubric import find_test

    with tracker() as opened:
        run_id = record_evidence(opened, test, evidence, ref=ref)
    console.print(f"recorded {find_test(test).id} (run {run_id}): ½ point while the record stands", markup=False)


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="score")


__all__ = ["app", "register"]
