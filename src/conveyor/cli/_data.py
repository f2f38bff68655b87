"""Data commands: ``conveyor data …`` (versioned data sets, schemas, validation) and
``conveyor lineage REF``. conveyor.data is imported inside the commands: the CLI starts
fast, and ``data add`` with nothing changed stays well under a second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from conveyor.cli._common import EXIT_PROBLEMS, console, esc, fmt_ms, fmt_value, handle_errors, print_json

data_app = typer.Typer(help="Versioned data sets: add, list, show, diff, get, validate, schema.", no_args_is_help=True)


@contextmanager
def _remote() -> Iterator[Any]:
    """The conveyor server's HTTP client in remote mode ([server] url set), else None: the
    read commands then ask the server instead of opening stores this client has no access to."""
    from conveyor.cli._common import settings, tracker

    if settings().server.url is None:
        yield None
        return
    with tracker() as t:
        yield t.http


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("lineage")(lineage)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


@data_app.command("add")
@handle_errors
def add(
    path: Path = typer.Argument(..., help="A file, a folder, or a CSV/Parquet table."),
    name: str = typer.Option(..., "--name", "-n", help="Data set name (new versions are numbered 1, 2, …)."),
    run_id: str | None = typer.Option(None, "--run", help="Record this run as the producer."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Version PATH under NAME: a new version when the content changed, else "unchanged"."""
    from conveyor.cli._common import settings

    if not as_json and run_id is None and settings().server.url is None:
        # The common "nothing changed" answer without importing the metadata store.
        from conveyor.data._status import quick_unchanged

        quick = quick_unchanged(path, name)
        if quick is not None:
            console.print(f"unchanged: {quick.ref}", markup=False, highlight=False)
            return
    import conveyor.data as cd
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("hashing new files", total=None)
        version = cd.add(path, name=name, run_id=run_id, progress=lambda n, total: bar.update(task, completed=n, total=total))
    if as_json:
        print_json(version.to_dict(profile=False))
    elif version.created:
        console.print(f"[green]added[/] {esc(version.ref)}  {version.kind}, {version.file_count} file(s), {_size(version.size)}")
    else:
        console.print(f"unchanged: {esc(version.ref)}")


@data_app.command("status")
@handle_errors
def status(
    path: Path = typer.Argument(..., help="A folder added with `data add`."),
    name: str | None = typer.Option(None, "--name", "-n", help="Data set to compare with (default: the one last added from PATH)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Whether PATH changed since its latest version: files added, removed, modified (nothing is stored)."""
    from conveyor.data._status import status as folder_status

    found = folder_status(path, name)
    if as_json:
        print_json(found.to_dict())
        return
    if found.state == "new":
        console.print(f"new: {path} is not a version of any data set yet ({len(found.added)} file(s))",
                      markup=False, highlight=False)
        return
    console.print(f"{found.state}: {path} against {found.ref}", markup=False, highlight=False)
    for mark, paths in (("+", found.added), ("-", found.removed), ("~", found.modified)):
        for p in paths[:50]:
            console.print(f"  {mark} {p}", markup=False, highlight=False)
        if len(paths) > 50:
            console.print(f"  {mark} … and {len(paths) - 50} more", markup=False, highlight=False)


@data_app.command("list")
@handle_errors
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every data set with its latest version."""
    import conveyor.data as cd
    from conveyor.cli import _remote_data as rd

    with _remote() as http:
        found = rd.list_datasets(http) if http is not None else cd.list_datasets()
    if as_json:
        print_json([v.to_dict(profile=False) for v in found])
        return
    table = Table(title="data sets")
    for col in ("name", "latest", "kind", "files", "size", "created", "digest"):
        table.add_column(col, justify="right" if col in ("latest", "files", "size") else "left")
    for v in found:
        table.add_row(esc(v.name), str(v.version), v.kind + (f" ({v.format})" if v.format else ""), str(v.file_count),
                      _size(v.size), fmt_ms(v.created_at), v.digest[:19])
    console.print(table)


@data_app.command("show")
@handle_errors
def show(
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or data:/NAME@VERSION."),
    files: int = typer.Option(20, "--files", help="How many files of a folder to list."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A version: schema and statistics (tables), files (folders), lineage and history."""
    import conveyor.data as cd
    from conveyor.data._checkout import manifest_of
    from conveyor.data._context import blobs_for

    # Both modes: in remote mode conveyor.data asks the server (the manifest is read through it).
    version = cd.get_version(ref)
    manifest = manifest_of(blobs_for(None, version.name, version.version), version)
    graph = cd.lineage_graph(None, version.ref, depth=1)
    history = cd.versions(version.name)
    if as_json:
        out = version.to_dict()
        out["files"] = [{"path": e.path, "digest": str(e.digest), "size": e.size} for e in manifest.entries] if manifest else None
        out["lineage"] = graph.to_dict()
        out["versions"] = [v.version for v in history]
        print_json(out)
        return
    console.print(f"[bold]{esc(version.ref)}[/]  {version.kind}{f' ({version.format})' if version.format else ''}  "
                  f"{version.file_count} file(s), {_size(version.size)}  created {fmt_ms(version.created_at)}")
    console.print(f"digest {version.digest}\nsource {esc(version.source)}\nversions {', '.join(str(v.version) for v in history)}")
    if version.profile:
        _print_profile(version.profile)
    if manifest:
        table = Table(title=f"files ({len(manifest.entries)})")
        table.add_column("path")
        table.add_column("size", justify="right")
        table.add_column("digest")
        for entry in manifest.entries[:files]:
            table.add_row(esc(entry.path), _size(entry.size), str(entry.digest)[:19])
        console.print(table)
        if len(manifest.entries) > files:
            console.print(f"… and {len(manifest.entries) - files} more (--files N)")
    for edge in graph.upstream:
        console.print(f"upstream:   {esc(edge.upstream)} --{esc(edge.relation)}--> {esc(edge.downstream)}")
    for edge in graph.downstream:
        console.print(f"downstream: {esc(edge.upstream)} --{esc(edge.relation)}--> {esc(edge.downstream)}")


def _print_profile(profile: dict[str, Any]) -> None:
    table = Table(title=f"schema and statistics ({profile['rows']} rows)")
    for col in ("column", "type", "nulls", "min", "p50", "max", "mean", "distinct", "categories"):
        table.add_column(col, justify="left" if col in ("column", "type", "categories") else "right")
    for name, col in profile["columns"].items():
        cats = col.get("categories")
        shown = "" if cats is None else ", ".join(map(str, cats[:6])) + (" …" if len(cats) > 6 else "")
        table.add_row(
            esc(name), esc(col["type"]), f"{col['nulls']} ({col['null_rate']:.1%})", fmt_value(col.get("min")),
            fmt_value((col.get("quantiles") or {}).get("0.5")), fmt_value(col.get("max")), fmt_value(col.get("mean")),
            str(col.get("distinct", "")), esc(shown),
        )
    console.print(table)


@data_app.command("diff")
@handle_errors
def diff(
    a: str = typer.Argument(..., help="The old version, NAME@A."),
    b: str = typer.Argument(..., help="The new version, NAME@B."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Files added/removed/changed; for tables also rows, schema changes and statistic shifts."""
    import conveyor.data as cd

    from conveyor.cli import _remote_data as rd

    with _remote() as http:
        d = rd.diff(http, a, b) if http is not None else cd.diff(a, b)
    if as_json:
        print_json(d.to_dict())
        return
    console.print(f"[bold]{esc(d.a)} → {esc(d.b)}[/]" + ("  (same content)" if d.same_content else ""))
    for mark, color, paths in (("+", "green", d.added), ("-", "red", d.removed), ("~", "yellow", d.changed)):
        for p in paths:
            console.print(f"[{color}]{mark} {esc(p)}[/]", highlight=False)
    if d.rows is not None:
        console.print(f"rows: {d.rows[0]} → {d.rows[1]} ({d.rows[1] - d.rows[0]:+d})")
        for line in d.schema_changes:
            console.print(f"schema: {esc(line)}", highlight=False)
        if d.changed_columns:
            table = Table(title="statistic shifts")
            for col in ("column", "statistic", d.a, d.b):
                table.add_column(col)
            for column, stats in d.changed_columns.items():
                for stat, (old, new) in stats.items():
                    table.add_row(esc(column), esc(stat), esc(fmt_value(old)), esc(fmt_value(new)))
            console.print(table)


@data_app.command("get")
@handle_errors
def get(
    ref: str = typer.Argument(..., help="NAME@VERSION."),
    dest: Path = typer.Argument(..., help="Destination file or folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files that hold other bytes."),
) -> None:
    """Write a version to DEST as copies verified against their digests.

    Existing files are never overwritten without --force; nothing is written into .git or
    onto a device."""
    import conveyor.data as cd

    written = cd.get(ref, dest, force=force)
    console.print(f"wrote {cd.get_version(ref).ref} to {written}", markup=False, highlight=False)


@data_app.command("validate")
@handle_errors
def validate(
    ref: str = typer.Argument(..., help="The version to check, NAME@NEW, or a CSV/Parquet file not yet versioned."),
    against: str | None = typer.Option(None, "--against", help="Compare with this version (default: the previous one)."),
    schema: Path | None = typer.Option(None, "--schema", help="A schema file (TOML or JSON) to check against."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="warning or error (default: [data] fail_on)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Report anomalies (missing/extra columns, type changes, new categories, out-of-range
    values, null-rate jumps); exit 1 when one reaches the configured severity."""
    import conveyor.data as cd
    from conveyor.data._versions import data_settings
    from conveyor.errors import InvalidInput

    if against is not None and schema is not None:
        raise InvalidInput("give --against or --schema, not both", field="--schema", value=str(schema))
    settings = data_settings()
    threshold = fail_on or settings.fail_on
    if threshold not in ("warning", "error"):
        raise InvalidInput(f"--fail-on {threshold!r} is not valid", field="--fail-on", value=threshold, hint="warning or error")
    from conveyor.cli import _remote_data as rd

    with _remote() as http:
        if http is not None and schema is None:  # the server validates against a version
            anomalies = rd.validate(http, ref, against)
        else:  # with --schema in remote mode: the version is downloaded (verified) and checked here
            anomalies = cd.validate(ref, against=against, schema=schema, settings=settings)
    failing = [a for a in anomalies if threshold == "warning" or a.severity == "error"]
    if as_json:
        print_json({"ref": ref, "anomalies": [a.to_dict() for a in anomalies], "failed": bool(failing)})
    elif not anomalies:
        console.print(f"[green]no anomalies[/] in {esc(ref)}")
    else:
        table = Table(title=f"anomalies in {esc(ref)}")
        for col in ("severity", "column", "anomaly", "expected", "found"):
            table.add_column(col)
        for a in anomalies:
            color = "red" if a.severity == "error" else "yellow"
            table.add_row(f"[{color}]{a.severity}[/]", esc(a.column or "(table)"), esc(a.kind), esc(a.expected), esc(a.found))
        console.print(table)
    if failing:
        raise typer.Exit(EXIT_PROBLEMS)


@data_app.command("schema")
@handle_errors
def schema(
    ref: str = typer.Argument(..., help="A table version, NAME@V."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this .toml or .json file (default: print TOML)."),
) -> None:
    """Write the inferred schema of a table version: edit it and keep it in the project."""
    import conveyor.data as cd

    from conveyor.cli import _remote_data as rd

    with _remote() as http:
        inferred = rd.schema_of(http, ref) if http is not None else cd.schema_of(ref)
    if out is None:
        import tomli_w

        typer.echo(tomli_w.dumps(inferred.to_dict()), nl=False)
        return
    inferred.write(out)
    console.print(f"wrote the schema of {esc(ref)} to {esc(out)}; edit it, then `conveyor data validate NAME@V --schema {esc(out)}`")


@handle_errors
def lineage(
    ref: str = typer.Argument(..., help="runs:/ID, runs:/ID/PATH, data:/NAME@V, models:/NAME/V or KIND:ID."),
    direction: str = typer.Option("both", "--direction", "-d", help="up, down or both."),
    depth: int | None = typer.Option(None, "--depth", help="Levels to follow (default: all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Print what is upstream and downstream of REF as trees."""
    import conveyor.data as cd

    from conveyor.cli import _remote_data as rd

    with _remote() as http:
        if http is not None:
            graph = rd.lineage_graph(http, ref, direction, depth)
        else:
            graph = cd.lineage_graph(None, ref, direction=direction, depth=depth)  # type: ignore[arg-type]
    if as_json:
        print_json(graph.to_dict())
        return
    for upstream, title in ((True, "upstream (where it came from)"), (False, "downstream (what used it)")):
        if (direction == "down" and upstream) or (direction == "up" and not upstream):
            continue
        tree = Tree(f"[bold]{esc(graph.root)}[/]  [dim]{title}[/]")
        _grow(tree, graph, graph.root, upstream, {graph.root})
        console.print(tree)


def _grow(tree: Tree, graph: Any, node: Any, upstream: bool, path: set[Any]) -> None:
    for edge in graph.children(node, upstream=upstream):
        far = edge.upstream if upstream else edge.downstream
        label = f"{esc(far)}  [dim]{esc(edge.relation)}{' (implied)' if edge.implied else ''}[/]"
        if far in path:
            tree.add(label + " [dim](cycle)[/]")
            continue
        _grow(tree.add(label), graph, far, upstream, path | {far})
