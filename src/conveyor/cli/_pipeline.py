"""``conveyor pipeline``: run, show, list and sweep pipelines."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli._common import (
    apply_trust,
    console,
    esc,
    fmt_ms,
    fmt_value,
    handle_errors,
    print_json,
    settings,
    tracker,
    trust_option,
)
from conveyor.errors import InvalidInput, NotFound

app = typer.Typer(help="Run cached pipelines of Python steps, locally or on Ray.", no_args_is_help=True)

_STYLE = {"cached": "cyan", "finished": "green", "failed": "red", "skipped": "yellow", "running": "dim",
          "uncached": "yellow"}
_MARK = {"cached": "↺", "finished": "✓", "failed": "✗", "skipped": "–", "running": "…", "uncached": "!"}


def load_pipeline(ref: str) -> Any:
    """``module:name`` or ``path/to/file.py:name`` → the ``@pipeline`` object."""
    from conveyor.pipelines import Pipeline

    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(f"{ref!r} is not module:pipeline", field="pipeline", value=ref, hint="e.g. train:pipeline")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        module_name = path.stem
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] and exc.name != module_name:
            raise
        raise NotFound("module", module_name, hint="run from the project folder, or give path/to/file.py:name") from None
    target = getattr(module, attr, None)
    if target is None:
        raise NotFound("pipeline", ref, hint=f"{module_name} has no attribute {attr!r}")
    if not isinstance(target, Pipeline):
        raise InvalidInput(f"{ref} is a {type(target).__name__}, not a @pipeline", field="pipeline", value=ref)
    return target


def _params(pipe: Any, raw: list[str]) -> dict[str, Any]:
    from conveyor.pipelines._dag import coerce_params

    pairs: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"parameter {item!r} is not KEY=VALUE", field="param", value=item)
        pairs[key.strip()] = value
    return coerce_params(pipe, pairs)


def _event(node: str, status: str, detail: str) -> None:
    style = _STYLE.get(status, "white")
    label = "cached" if status == "cached" else status
    console.print(f"  [{style}]{_MARK.get(status, ' ')} {escape(node)}[/] [dim]{label} {escape(detail)}[/]",
                  highlight=False)


def _options() -> Any:
    from conveyor.pipelines import PipelineSettings

    return PipelineSettings.from_section(settings().section("pipelines"))


def _summary(result: Any) -> dict[str, Any]:
    return {
        "run_id": result.run_id, "pipeline": result.pipeline, "status": result.status,
        "duration_s": round(result.duration_s, 3), "cached": result.cached,
        "candidate": result.candidate, "evaluation": dict(result.evaluation),
        "steps": {
            n: {"status": s.status, "cached": s.cached, "run_id": s.run_id, "error": s.error,
                "duration_s": round(s.duration_s, 3), "attempts": s.attempts}
            for n, s in result.steps.items()
        },
    }


@app.command("run")
@handle_errors
def run_cmd(
    pipeline_ref: str = typer.Argument(..., metavar="MODULE:PIPELINE"),
    param: list[str] = typer.Option([], "-p", "--param", help="KEY=VALUE, repeatable."),
    executor: str | None = typer.Option(None, "--executor", help="local or ray."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="host:port of the Ray cluster."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, ignore the cache."),
    experiment: str | None = typer.Option(None, "--experiment", "-e"),
    max_workers: int | None = typer.Option(None, "--max-workers", min=1),
    as_json: bool = typer.Option(False, "--json"),
    trust: list[str] = trust_option(),
) -> None:
    """Run a pipeline: cached steps are skipped, the rest run in parallel."""
    from conveyor.pipelines import run

    apply_trust(trust)  # steps load cached estimators and model packages (in their own processes too)
    opts = _options()
    pipe = load_pipeline(pipeline_ref)
    params = _params(pipe, param)
    with tracker(create=True) as t:
        if not as_json:
            console.print(f"[bold]pipeline {esc(pipe.name)}[/] {esc(json.dumps(params)) if params else ''}", highlight=False)
        result = run(
            pipe, params=params, executor=executor or opts.executor, ray_address=ray_address or opts.ray_address,
            cache=not no_cache, experiment=experiment or opts.experiment, tracker=t,
            max_workers=max_workers or opts.max_workers, on_event=None if as_json else _event,
            s3_endpoint_url=settings().store.s3_endpoint_url,
        )
    if as_json:
        print_json(_summary(result))
    else:
        for name, step in result.steps.items():
            if step.status == "FAILED" and step.error:
                console.print(f"[red]{esc(name)} failed:[/] {esc(step.error)}", highlight=False)
        colour = "green" if result.ok else "red"
        console.print(
            f"[{colour}]{result.status}[/] run {result.run_id} in {result.duration_s:.2f}s · "
            f"{len(result.cached)}/{result.step_count} steps cached",
            highlight=False,
        )
        if result.candidate:
            shown = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(result.evaluation.items()))
            console.print(escape(f"candidate {result.candidate}" + (f" · evaluation {shown}" if shown else "")
                                 + f" · gate it: conveyor ci check --candidate runs:/{result.run_id}"),
                          highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command("show")
@handle_errors
def show_cmd(
    pipeline_ref: str = typer.Argument(..., metavar="MODULE:PIPELINE"),
    param: list[str] = typer.Option([], "-p", "--param"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Print the pipeline's DAG: each step, what it takes from which step, its parameters."""
    pipe = load_pipeline(pipeline_ref)
    graph = pipe(**_params(pipe, param))
    if as_json:
        print_json(graph.describe())
        return
    console.print(f"[bold]pipeline {escape(graph.pipeline)}[/] {escape(json.dumps(graph.params))}", highlight=False)
    if graph.candidate or graph.evaluation:
        console.print(escape(f"  candidate: {'.'.join(graph.candidate) if graph.candidate else '(none declared)'} · "
                             f"evaluation: {graph.evaluation or '(none declared)'}"), highlight=False)
    for node_id in graph.order():
        node = graph.nodes[node_id]
        sources = [f"{arg}←{h.node}.{h.output}" for arg, h in node.inputs.items()] + [f"after {a}" for a in node.after]
        params = ", ".join(f"{k}={v!r}" for k, v in node.params.items())
        outs = ", ".join(node.step.options.outputs)
        console.print(
            f"  [cyan]{node_id}[/] ({', '.join(sources) or 'no inputs'})"
            f"{' [' + params + ']' if params else ''} → {outs}",
            highlight=False,
        )


@app.command("runs")
@handle_errors
def runs_cmd(
    pipeline_name: str | None = typer.Option(None, "--pipeline"),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent pipeline runs with their status and how many steps were cached."""
    from conveyor.store import PipelineRepo

    repo = PipelineRepo()
    with tracker() as t:
        if getattr(t, "http", None) is not None:  # remote mode: the server's /api/v1/pipelines
            params: dict[str, Any] = {"max_results": min(limit, 1000)}
            if pipeline_name is not None:
                params["pipeline"] = pipeline_name
            found = t.http.json("GET", "/pipelines/runs", params=params)["runs"]
            remote_rows = [{"run_id": r["run_id"], "pipeline": r["pipeline"], "executor": r["executor"],
                            "status": r["status"], "started": r["created_at"], "duration_s": r["duration_s"],
                            "steps": r["steps"], "cached": r["cached"]} for r in found]
        else:
            remote_rows = None
            with t.store.read() as conn:
                records = repo.list_runs(conn, pipeline_name, limit)
                execs = {r.run_id: repo.executions_of(conn, r.run_id) for r in records}
                runs = {r.run_id: t.store.runs.get(conn, r.run_id) for r in records}
    rows = remote_rows if remote_rows is not None else [
        {
            "run_id": r.run_id, "pipeline": r.pipeline, "executor": r.executor,
            "status": runs[r.run_id].status.value, "started": r.created_at,
            "duration_s": runs[r.run_id].duration_s,
            "steps": len(execs[r.run_id]), "cached": sum(e.cached for e in execs[r.run_id]),
        }
        for r in records
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="pipeline runs")
    for col in ("run", "pipeline", "status", "started", "duration", "cached", "executor"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["run_id"][:12], esc(row["pipeline"]), row["status"], fmt_ms(row["started"]),
            fmt_value(row["duration_s"]), f"{row['cached']}/{row['steps']}", row["executor"],
        )
    console.print(table)


@app.command("sweep")
@handle_errors
def sweep_cmd(
    pipeline_ref: str = typer.Argument(..., metavar="MODULE:PIPELINE"),
    grid: list[str] = typer.Option(..., "--grid", help="KEY=V1,V2,… repeatable; the runs cover every combination."),
    metric: str = typer.Option(..., "--metric", help="Metric of the pipeline run to rank by."),
    maximize: bool | None = typer.Option(
        None, "--maximize/--minimize",
        help="Whether a higher metric is better; inferred for accuracy, f1*, r2, auc (max) and loss, rmse, mae "
             "(min), required for other names."),
    executor: str | None = typer.Option(None, "--executor"),
    ray_address: str | None = typer.Option(None, "--ray-address"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    max_workers: int | None = typer.Option(None, "--max-workers", min=1),
    as_json: bool = typer.Option(False, "--json"),
    trust: list[str] = trust_option(),
) -> None:
    """Run the pipeline over a parameter grid in parallel and print the best run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from conveyor.pipelines import sweep
    from conveyor.pipelines._dag import coerce_params
    from conveyor.pipelines._sweep import direction, grid_points

    apply_trust(trust)
    opts = _options()
    pipe = load_pipeline(pipeline_ref)
    values: dict[str, list[Any]] = {}
    for item in grid:
        key, sep, text = item.partition("=")
        if not sep or not key or not text:
            raise InvalidInput(f"grid {item!r} is not KEY=V1,V2", field="grid", value=item)
        values[key] = [coerce_params(pipe, {key: v})[key] for v in text.split(",")]
    maximize, source = direction(metric, maximize)  # an unknown name without a direction fails here
    goal = f"{'higher' if maximize else 'lower'} is better ({'inferred from the name' if source == 'inferred' else 'as given'})"
    total = len(grid_points(values))
    progress = Progress(TextColumn("[bold]sweep[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=as_json)
    with progress, tracker(create=True) as t:
        task = progress.add_task(escape(f"{pipe.name}: {metric}, {goal}"), total=total)

        def done(point: Any, result: Any) -> None:
            mark = "✓" if result.ok else "✗"
            if not as_json:
                progress.console.print(f"  {mark} {escape(json.dumps(point))} ({len(result.cached)}/{result.step_count} "
                                       f"cached, {result.duration_s:.2f}s)", highlight=False)
            progress.advance(task)

        result = sweep(
            pipe, values, metric=metric, maximize=maximize, executor=executor or opts.executor,
            ray_address=ray_address or opts.ray_address, cache=not no_cache, tracker=t,
            max_workers=max_workers or opts.max_workers, on_point=done,
        )
    best = result.best
    if as_json:
        print_json({
            "sweep_id": result.sweep_id, "metric": metric, "maximize": maximize, "direction": source,
            "points": [{"params": p, "run_id": r.run_id, "status": r.status, "candidate": r.candidate, metric: v}
                       for p, r, v in result.points],
            "best": {"params": best[0], "run_id": best[1].run_id, "candidate": best[1].candidate, metric: best[2]}
            if best else None,
        })
    else:
        table = Table(title=escape(f"sweep {result.sweep_id}: {metric}, {goal}; best first"))
        for col in (*values, metric, "status", "cached", "run"):
            table.add_column(escape(col))
        for p, r, v in result.points:
            table.add_row(*(escape(str(p[k])) for k in values), fmt_value(v), r.status,
                          f"{len(r.cached)}/{r.step_count}", r.run_id[:12])
        console.print(table)
        if best:
            p, r, v = best
            console.print(f"[green]best:[/] {escape(json.dumps(p))} → {escape(metric)}={fmt_value(v)} (run {r.run_id})",
                          highlight=False)
            if r.candidate:
                console.print(f"gate it: conveyor ci check --candidate runs:/{r.run_id}", highlight=False)
            else:
                args = " ".join(f"-p {k}={json.dumps(val) if not isinstance(val, str) else val}" for k, val in p.items())
                console.print(escape(f"gate it: conveyor ci check --pipeline {pipeline_ref} {args} "
                                     "(declare @pipeline(candidate=...) to gate this run's model directly)"),
                              highlight=False)
    if any(not r.ok for _, r, _ in result.points):
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")
