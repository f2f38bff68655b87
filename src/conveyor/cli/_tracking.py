"""Tracking commands: experiments, runs, artifacts."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from conveyor.cli._common import console, esc, fmt_ms, fmt_value, handle_errors, print_json, tracker

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list, inspect, compare, delete.", no_args_is_help=True)
artifacts_app = typer.Typer(help="Artifacts logged to runs.", no_args_is_help=True)

STATUS_COLORS = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "yellow"}


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(runs_app, name="runs")
    app.add_typer(artifacts_app, name="artifacts")


@experiments_app.command("list")
@handle_errors
def experiments_list(
    archived: bool = typer.Option(False, "--archived", help="Include archived experiments."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List experiments with their number of runs."""
    with tracker() as t:
        found = t.list_experiments(include_archived=archived)
        counts = {e.name: len(t.search_runs(e.name, output="runs")) for e in found}
    if as_json:
        print_json([{"id": e.id, "name": e.name, "runs": counts[e.name], "archived": e.archived,
                     "description": e.description, "created_at": e.created_at} for e in found])
        return
    table = Table(title="experiments")
    for col in ("id", "name", "runs", "created", "description"):
        table.add_column(col)
    for e in found:
        table.add_row(str(e.id), esc(e.name) + (" (archived)" if e.archived else ""), str(counts[e.name]),
                      fmt_ms(e.created_at), esc(e.description))
    console.print(table)


def _run_json(run: Any) -> dict[str, Any]:
    data = {k: getattr(run, k) for k in run.__dataclass_fields__}
    data["status"] = run.status.value
    data["metrics"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in run.metrics.items()}
    return data


@runs_app.command("list")
@handle_errors
def runs_list(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this experiment."),
    filter: str = typer.Option("", "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\""),
    order_by: list[str] = typer.Option([], "--order-by", "-o", help="e.g. 'metrics.acc desc' (repeatable)."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many runs."),
    deleted: bool = typer.Option(False, "--deleted", help="Include deleted runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first (or by --order-by), with their main metrics."""
    with tracker() as t:
        found = t.search_runs(experiment, filter, order_by, limit, output="runs", include_deleted=deleted)
    if as_json:
        print_json([_run_json(r) for r in found])
        return
    metric_keys = sorted({k for r in found for k in r.metrics})[:6]
    table = Table(title=f"runs ({len(found)})")
    for col in ("run id", "experiment", "name", "status", "started", "duration", *metric_keys):
        table.add_column(esc(col), justify="right" if col in metric_keys else "left")
    for r in found:
        color = STATUS_COLORS.get(r.status.value, "white")
        table.add_row(
            r.id[:12], esc(r.experiment), esc(r.name), f"[{color}]{r.status.value}[/]" + (" (deleted)" if r.deleted else ""),
            fmt_ms(r.start_time), "" if r.duration_s is None else f"{r.duration_s:.1f}s",
            *[esc(fmt_value(r.metrics.get(k))) for k in metric_keys],
        )
    console.print(table)


def _resolve(t: Any, prefix: str) -> str:
    """Accept a unique prefix of a run id, as git does for commits."""
    from conveyor.errors import InvalidInput, NotFound

    if len(prefix) == 32:
        return prefix
    matches = [r.id for r in t.search_runs(filter=f"run_id like '{_escape(prefix)}%'", output="runs", include_deleted=True)]
    if not matches:
        raise NotFound("run", prefix, hint="`conveyor runs list` shows the known runs")
    if len(matches) > 1:
        raise InvalidInput(f"run id prefix {prefix!r} is ambiguous ({len(matches)} runs)", field="run", value=prefix,
                           hint="give more characters")
    return str(matches[0])


def _escape(text: str) -> str:
    if not text.isalnum():
        from conveyor.errors import InvalidInput

        raise InvalidInput(f"{text!r} is not a run id", field="run", value=text, hint="run ids are hexadecimal")
    return text


@runs_app.command("show")
@handle_errors
def runs_show(run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Everything about one run: status, context, params, metrics, tags, artifacts."""
    with tracker() as t:
        found = t.get_run(_resolve(t, run))
        arts = t.list_artifacts(found.id)
    if as_json:
        print_json(_run_json(found) | {"artifacts": [dataclasses.asdict(a) for a in arts]})
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    color = STATUS_COLORS.get(found.status.value, "white")
    for label, value in [
        ("run", found.id), ("name", found.name), ("experiment", found.experiment),
        ("status", f"[{color}]{found.status.value}[/]"), ("started", fmt_ms(found.start_time)),
        ("ended", fmt_ms(found.end_time)), ("parent", found.parent_id or ""),
        ("user@host", f"{found.user}@{found.host}"), ("command", found.command or ""),
        ("git", f"{found.git_commit or '-'} {found.git_branch or ''}{' (dirty)' if found.git_dirty else ''}"),
        ("python", found.python_version or ""), ("packages", found.packages_digest or ""),
    ]:
        info.add_row(label, value if label == "status" else esc(value))
    console.print(info)
    for title, values in (("params", found.params), ("metrics", found.metrics), ("tags", found.tags)):
        if values:
            table = Table(title=title, title_justify="left")
            table.add_column("key")
            table.add_column("value")
            for k in sorted(values):
                table.add_row(esc(k), esc(fmt_value(values[k])))
            console.print(table)
    if arts:
        table = Table(title="artifacts", title_justify="left")
        for col in ("path", "size", "type", "digest"):
            table.add_column(col)
        for a in arts:
            table.add_row(esc(a.path + ("/" if a.is_dir else "")), f"{a.size:,}", esc(a.media_type), a.digest[:19] + "…")
        console.print(table)
    if found.error:
        console.print(f"[red]error:[/]\n{esc(found.error)}")


@runs_app.command("compare")
@handle_errors
def runs_compare(runs: list[str] = typer.Argument(..., help="Two or more run ids (or prefixes)."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Params and metrics side by side; rows that differ are highlighted."""
    with tracker() as t:
        found = [t.get_run(_resolve(t, r)) for r in runs]
    rows: list[tuple[str, list[Any]]] = []
    for kind, attr in (("params", "params"), ("metrics", "metrics")):
        keys = sorted({k for r in found for k in getattr(r, attr)})
        rows += [(f"{kind}.{k}", [getattr(r, attr).get(k) for r in found]) for k in keys]
    if as_json:
        print_json({"runs": [r.id for r in found], "rows": {k: v for k, v in rows}})
        return
    table = Table(title="compare")
    table.add_column("key")
    for r in found:
        table.add_column(f"{esc(r.name)}\n{r.id[:8]}", justify="right")
    for key, values in rows:
        differs = len({fmt_value(v) for v in values}) > 1
        cells = [esc(fmt_value(v)) for v in values]
        if differs and key.startswith("metrics."):
            numeric = [v for v in values if isinstance(v, float) and not math.isnan(v)]
            best = max(numeric) if numeric else None
            cells = [f"[bold green]{c}[/]" if v == best else f"[yellow]{c}[/]" for c, v in zip(cells, values)]
        elif differs:
            cells = [f"[yellow]{c}[/]" for c in cells]
        table.add_row(f"[bold]{esc(key)}[/]" if differs else esc(key), *cells)
    console.print(table)
    console.print("[yellow]yellow[/]: differs; [bold green]green[/]: highest value of a metric")


@runs_app.command("delete")
@handle_errors
def runs_delete(runs: list[str] = typer.Argument(...)) -> None:
    """Mark runs deleted (reversible with `runs restore`; `conveyor gc` purges them)."""
    with tracker() as t:
        ids = [_resolve(t, r) for r in runs]
        t.delete_runs(ids)
    console.print(f"deleted {len(ids)} run(s); `conveyor runs restore` undoes it until `conveyor gc`")


@runs_app.command("restore")
@handle_errors
def runs_restore(runs: list[str] = typer.Argument(...)) -> None:
    """Undo `runs delete`."""
    with tracker() as t:
        ids = [_resolve(t, r) for r in runs]
        t.restore_runs(ids)
    console.print(f"restored {len(ids)} run(s)")


@artifacts_app.command("list")
@handle_errors
def artifacts_list(run: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Artifacts of a run (folders expanded)."""
    with tracker() as t:
        run_id = _resolve(t, run)
        rows = t.artifact_files(run_id)
    if as_json:
        print_json([{"path": p, "size": s, "digest": d} for p, s, d in rows])
        return
    table = Table(title=f"artifacts of {run_id}")
    for col in ("path", "size", "digest"):
        table.add_column(col)
    for p, s, d in rows:
        table.add_row(esc(p), f"{s:,}", d)
    console.print(table)


@artifacts_app.command("get")
@handle_errors
def artifacts_get(
    run: str = typer.Argument(...),
    path: str = typer.Argument(..., help="Artifact path (a file or a folder)."),
    dest: Path | None = typer.Option(
        None, "--dest", "-d", help="Where to write it (default: a new file or folder named after the artifact)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files that hold other bytes."),
) -> None:
    """Download an artifact (file or folder) of a run.

    Existing files are never overwritten without --force; nothing is written into .git or
    onto a device."""
    with tracker() as t:
        written = t.download_artifact(_resolve(t, run), path, dest, force=force)
    console.print(f"wrote {written}", markup=False, highlight=False)


@runs_app.command("gc-stale")
@handle_errors
def runs_gc_stale(
    stale_after: float | None = typer.Option(
        None, "--stale-after", min=0.0,
        help="Seconds without a heartbeat that make a RUNNING run dead (default: the tracking.stale_after setting).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list them."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """Mark RUNNING runs whose process died (no heartbeat for --stale-after seconds) as KILLED."""
    from rich.markup import escape

    from conveyor.cli._common import settings
    from conveyor.store import Store
    from conveyor.tracking._heartbeat import find_stale, mark_stale

    loaded = settings()
    after = loaded.tracking.stale_after if stale_after is None else stale_after
    store = Store.from_settings(loaded)
    try:
        found = find_stale(store, after) if dry_run else mark_stale(store, after)
    finally:
        store.close()
    if as_json:
        print_json([{"run_id": r.run_id, "last_seen": r.last_seen_ms, "marked": not dry_run} for r in found])
        return
    if not found:
        console.print(f"no RUNNING run without a heartbeat for {after:g} s")
        return
    table = Table(title=("would mark KILLED" if dry_run else "marked KILLED"))
    table.add_column("run")
    table.add_column("last sign of life")
    for r in found:
        table.add_row(escape(r.run_id), fmt_ms(r.last_seen_ms))
    console.print(table)
