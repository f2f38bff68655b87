"""``conveyor monitor``: evaluate monitors once or on a schedule, reports, alerts, retraining.

This edge wires monitoring to the layers above and beside it: windows come from
``conveyor.serving.read_prediction_log`` and a retraining runs the monitor's pipeline
(``conveyor.pipelines.train_candidate``), registers the candidate it declares, evaluates
the gate (``conveyor.gates.evaluate``) and promotes the candidate (``conveyor.gates.promote``)
only when the gate passed.
"""

from __future__ import annotations

import json
import time
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
    handle_errors,
    print_json,
    settings,
    tracker,
    trust_option,
)
from conveyor.errors import InvalidInput, NotFound

app = typer.Typer(help="Drift, data quality, live performance, alerts and retraining.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="monitor")


# -- wiring ---------------------------------------------------------------------------------------
def _window_reader(t: Any) -> Any:
    def load(model: str, version: str | None, since: int, until: int) -> Any:
        from conveyor.serving import read_prediction_log

        return read_prediction_log(model, version, since, until, with_feedback=True, tracker=t)

    return load


def retrain_hook(t: Any, config: Any) -> Any:
    """Run ``config.pipeline``, register the candidate it declares, gate it, promote if it passed."""
    from conveyor.monitoring import RetrainOutcome

    def hook(model: str, trigger_id: int) -> RetrainOutcome:
        from conveyor.cli._pipeline import _options, load_pipeline
        from conveyor.gates import evaluate, promote
        from conveyor.pipelines import train_candidate
        from conveyor.registry import Registry

        if not config.pipeline:
            raise InvalidInput(f"monitor {config.name!r} has retrain = true but no pipeline",
                               field=f"monitors.{config.name}.pipeline", hint='set pipeline = "module:pipeline"')
        registry = Registry(t)
        opts = _options()  # the project's [pipelines] table, as `conveyor pipeline run` honours it
        # cache=False: a retraining was asked for, so every step runs — a training step that
        # loads "the newest data" itself must not be a cache hit. The candidate is the one the
        # pipeline declares (@pipeline(candidate=...)), the same contract as `ci check --pipeline`.
        result = train_candidate(load_pipeline(config.pipeline), tracker=t,
                                 tags={"conveyor.retrain_trigger": str(trigger_id)}, executor=opts.executor,
                                 ray_address=opts.ray_address, max_workers=opts.max_workers,
                                 experiment=opts.experiment, cache=False,
                                 s3_endpoint_url=settings().store.s3_endpoint_url)
        candidate = registry.register(result.candidate, model,
                                      description=f"retrained by trigger {trigger_id} (pipeline run {result.run_id})")
        verdict = evaluate(config.gate, candidate.uri, registry=registry)
        if not verdict.passed:
            why = "; ".join(f"{c.name} ({c.summary})" for c in verdict.failures)
            return RetrainOutcome(result.run_id, candidate.version, False, f"gate {config.gate!r} failed: {why}")
        promote(model, candidate.version, registry=registry, reason=f"retraining trigger {trigger_id}")
        return RetrainOutcome(result.run_id, candidate.version, True,
                              f"gate {config.gate!r} passed; {model}@champion → {candidate.version}")

    return hook


def _configs(names: list[str] | None) -> tuple[Any, list[Any]]:
    """The defaults and the chosen monitors, checked before any store is opened."""
    from conveyor.monitoring import load_monitors

    defaults, monitors = load_monitors(settings())
    if not monitors:
        raise NotFound("monitor", "any", hint="declare a table monitors.<name> in conveyor.toml")
    unknown = [n for n in names or [] if n not in monitors]
    if unknown:
        raise NotFound("monitor", unknown[0], hint=f"known: {', '.join(sorted(monitors))}")
    return defaults, [monitors[n] for n in names] if names else list(monitors.values())


def _monitoring(t: Any, names: list[str] | None = None) -> tuple[Any, list[Any]]:
    from conveyor.monitoring import MonitorHooks, Monitoring

    defaults, chosen = _configs(names)
    hooks = {c.name: retrain_hook(t, c) for c in chosen}

    def retrain(model: str, trigger_id: int) -> Any:
        config = next(c for c in chosen if c.model == model)
        return hooks[config.name](model, trigger_id)

    return Monitoring(t, defaults, MonitorHooks(load_window=_window_reader(t), retrain=retrain)), chosen


def _show(evaluation: Any) -> None:
    colour = {"ok": "green", "alert": "red", "empty": "yellow", "error": "red"}[evaluation.status]
    m = evaluation.metrics
    console.print(
        f"[bold]{esc(evaluation.monitor)}[/] ({esc(evaluation.model)} v{esc(evaluation.model_version or '?')}): "
        f"[{colour}]{evaluation.status}[/] · rows {int(m.get('rows') or 0)} · drift share "
        f"{_f(m.get('drift_share'))} · accuracy {_f(m.get('accuracy'))} · p95 {_f(m.get('p95_latency_ms'))} ms",
        highlight=False)
    if evaluation.error:
        console.print(f"  [red]{esc(evaluation.error)}[/]", highlight=False)
    for rule in evaluation.rules:
        mark = {"fired": "[red]ALERT[/]", "ok": "[green]ok[/]", "no data": "[yellow]no data[/]"}[rule.status]
        console.print(f"  {mark} {esc(rule.rule)} (value {_f(rule.value)})", highlight=False)
    for trig in evaluation.triggers:
        console.print(f"  retraining trigger {trig.id}: {esc(trig.status)} — {esc(trig.decision)}", highlight=False)


def _f(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}"


def _as_dict(evaluation: Any) -> dict[str, Any]:
    return {"id": evaluation.id, "monitor": evaluation.monitor, "model": evaluation.model,
            "version": evaluation.model_version, "status": evaluation.status, "error": evaluation.error,
            "metrics": {k: v for k, v in evaluation.metrics.items() if k != "drift_report"},
            "rules": [r.to_dict() for r in evaluation.rules], "alerts": list(evaluation.alert_ids),
            "triggers": [t.__dict__ for t in evaluation.triggers]}


# -- commands --------------------------------------------------------------------------------------
@app.command("run")
@handle_errors
def run_cmd(
    names: list[str] = typer.Argument(None, help="Monitors to evaluate (default: all)."),
    as_json: bool = typer.Option(False, "--json"),
    wait: float = typer.Option(30.0, "--wait", help="Seconds to let webhook deliveries finish before exiting."),
    trust: list[str] = trust_option(),
) -> None:
    """Evaluate monitors once (for cron or CI); exit 1 when an alert fired."""
    _configs(names)
    apply_trust(trust)  # a retraining gates (loads) its candidate
    with tracker() as t:
        monitoring, chosen = _monitoring(t, names)
        results = [monitoring.evaluate(c) for c in chosen]
        monitoring.wait(wait)
    if as_json:
        print_json([_as_dict(e) for e in results])
    else:
        for evaluation in results:
            _show(evaluation)
    if any(e.status in ("alert", "error") for e in results):
        raise typer.Exit(1)


@app.command("watch")
@handle_errors
def watch_cmd(
    names: list[str] = typer.Argument(None, help="Monitors to evaluate (default: all)."),
    every: str = typer.Option(None, "--every", help="Interval, e.g. 10m (default: each monitor's schedule)."),
    max_runs: int = typer.Option(0, "--max-runs", min=0, help="Stop after this many rounds (0: never)."),
    trust: list[str] = trust_option(),
) -> None:
    """Keep evaluating monitors, each on its schedule (or --every); Ctrl-C stops."""
    from conveyor.monitoring import parse_duration

    _configs(names)
    apply_trust(trust)
    with tracker() as t:
        monitoring, chosen = _monitoring(t, names)
        interval = {c.name: parse_duration(every) if every else c.schedule_seconds for c in chosen}
        due = {c.name: 0.0 for c in chosen}
        rounds = 0
        try:
            while not max_runs or rounds < max_runs:
                now = time.monotonic()
                for config in chosen:
                    if now >= due[config.name]:
                        _show(monitoring.evaluate(config))
                        due[config.name] = now + interval[config.name]
                rounds += 1
                if max_runs and rounds >= max_runs:
                    break
                time.sleep(max(0.0, min(due.values()) - time.monotonic()))
        except KeyboardInterrupt:
            console.print("stopped")
        monitoring.wait(10)


@app.command("report")
@handle_errors
def report_cmd(
    model: str = typer.Argument(..., help="Registered model name."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML page here."),
    as_json: bool = typer.Option(False, "--json", help="Print the report document as JSON."),
    monitor: str = typer.Option(None, "--monitor", help="Only this monitor's evaluations."),
) -> None:
    """Drift table, reference-vs-current distributions and metrics over time of MODEL."""
    from conveyor.monitoring import load_monitors, render_html, report_data

    monitors = load_monitors(settings())[1]
    config = monitors.get(monitor) if monitor else next((c for c in monitors.values() if c.model == model), None)
    prediction = config.prediction if config is not None else "prediction"
    score = config.score if config is not None else None
    page = None
    with tracker() as t:
        if getattr(t, "http", None) is not None:  # remote mode: the server builds (and renders) the report
            from conveyor.monitoring._remote import remote_report

            found = remote_report(t, model, monitor=monitor, prediction=prediction, score=score,
                                  html=html is not None)
            data, page = found["data"], found["html"]
        else:
            # the newest window's predictions (and scores) are read back from the prediction log
            data = report_data(t, model, monitor=monitor, load_window=_window_reader(t), prediction=prediction,
                               score=score)
    if html is not None:
        html.write_text(page if page is not None else render_html(data), encoding="utf-8")
        console.print(f"wrote {esc(html)} ({html.stat().st_size / 1024:.0f} KiB)")
    if as_json:
        print_json(data)
    if html is None and not as_json:
        drift = data["drift"]
        console.print(f"{len(data['series'])} evaluations; newest drift share {_f(drift.get('drift_share'))}; "
                      f"use --html FILE or --json", highlight=False)
        from conveyor.monitoring._report import prediction_summary

        said = prediction_summary(data)  # what the recomputed number and the stored one each compare
        if said:
            console.print(esc(said), highlight=False)


@app.command("drift")
@handle_errors
def drift_cmd(
    reference: str = typer.Argument(..., help="data:/name@version or a Parquet/CSV file."),
    current: str = typer.Argument(..., help="data:/name@version or a Parquet/CSV file."),
    method: str = typer.Option(None, "--method", help="Drift method for every column (default auto)."),
    threshold: float = typer.Option(None, "--threshold"),
    columns: list[str] = typer.Option(None, "--columns", help="Columns to compare (repeat, or comma-separated; "
                                      "default: all shared ones)."),
    drift_share: float = typer.Option(None, "--drift-share",
                                      help="Share of drifted features that makes a data-set drift (default 0.5)."),
    target: str = typer.Option(None, "--target", help="Label column: its drift is reported, not counted as a feature."),
    prediction: str = typer.Option(None, "--prediction", help="Prediction column: reported, not counted."),
    monitor: str = typer.Option(None, "--monitor", help="Take columns, target, methods, thresholds and drift share "
                                "from this [monitors.<name>] (options given here win)."),
    html: Path = typer.Option(None, "--html"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare two tables column by column (ad hoc, nothing stored); exit 1 on data-set drift.

    Counts as ``monitor run`` does: the target (and prediction) columns get a verdict of
    their own but are not features, so they do not enter the drift share.
    """
    from conveyor.monitoring import compare
    from conveyor.monitoring._report import drift_report_data, render_html

    if drift_share is not None and not 0 < drift_share <= 1:
        raise InvalidInput(f"--drift-share {drift_share:g} is not a share", field="--drift-share", value=drift_share,
                           hint="give a number in (0, 1], e.g. 0.5")
    config = _configs([monitor])[1][0] if monitor else None
    chosen = [c.strip() for part in columns or [] for c in part.split(",") if c.strip()] or \
        (list(config.columns) if config is not None and config.columns else None)
    target = target or (config.target if config is not None else None)
    share = drift_share if drift_share is not None else (config.drift_share if config is not None else 0.5)
    options: dict[str, Any] = {
        "method": method or (config.method if config else "auto"),
        "methods": config.methods if config is not None else None,
        "threshold": threshold if threshold is not None else (config.threshold if config else None),
        "drift_share": share, "target": target, "prediction": prediction}
    title = f"{reference} → {current}"
    page = None
    if _remote_tables(reference, current):  # remote mode: the server reads the data sets and compares
        from conveyor.monitoring._remote import remote_drift

        with tracker() as t:
            report, page = remote_drift(t, _side(reference), _side(current), columns=chosen, html=html is not None,
                                        title=title, **options)
    else:
        ref, cur = _table(reference), _table(current)
        if chosen is not None:
            chosen += [c for c in (target, prediction) if c and c not in chosen and _has(ref, c) and _has(cur, c)]
        report = compare(ref, cur, columns=chosen, **options)
    if html is not None:
        html.write_text(page or render_html(drift_report_data(report, title=title)), encoding="utf-8")
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table("column", "role", "method", "value", "threshold", "statistics", "drifted", "note")
        for c in report.columns:
            stats = ", ".join(f"{k}={_f(v) if isinstance(v, float) else v}" for k, v in c.statistics.items()
                              if k != "p_value")
            table.add_row(esc(c.column), esc(c.role), esc(c.method), _f(c.value), _f(c.threshold), esc(stats),
                          "[red]yes[/]" if c.drifted else "no", esc(c.note))
        console.print(table)
        console.print(f"drift share {_f(report.drift_share)} ({report.n_drifted} of {report.n_features} features; "
                      f"threshold {share:g}) → data-set drift: {report.dataset_drift}", highlight=False)
    if report.dataset_drift:
        raise typer.Exit(1)


def _remote_tables(*refs: str) -> bool:
    """Whether a data:/ reference is to be read through a conveyor server ([server] url)."""
    return any(r.startswith("data:/") for r in refs) and settings().server.url is not None


def _side(ref: str) -> dict[str, Any]:
    """One side of ``POST /monitoring/drift``: a data set reference, or a local file's summary."""
    if ref.startswith("data:/"):
        return {"data": ref}
    from conveyor.monitoring import summarize
    from conveyor.monitoring._remote import summary_to_wire

    return {"summary": summary_to_wire(summarize(_table(ref), label=ref))}


def _has(table: Any, column: str) -> bool:
    """Whether a DataFrame or Parquet file has ``column`` (for adding target/prediction)."""
    if hasattr(table, "columns"):
        return column in table.columns
    import pyarrow.parquet as pq

    return column in pq.read_schema(table).names


def _table(ref: str) -> Any:
    if ref.startswith("data:/"):
        from conveyor.data import load

        with tracker() as t:
            return load(ref, tracker=t)
    path = Path(ref)
    if not path.exists():
        raise NotFound("table", ref, hint="give data:/name@version or an existing .parquet/.csv file")
    if path.suffix == ".csv":
        import pandas as pd

        return pd.read_csv(path)
    return path


@app.command("retrain")
@handle_errors
def retrain_cmd(
    monitor: str = typer.Argument(..., help="The monitor whose model, pipeline and gate to use."),
    force: bool = typer.Option(False, "--force", help="Ignore the cool-down and the failure backoff (never a live "
                               "lock; see `monitor unlock`)."),
    trust: list[str] = trust_option(),
) -> None:
    """Trigger a retraining by hand: pipeline → gate → promotion if it passed."""
    apply_trust(trust)
    with tracker() as t:
        monitoring, (config,) = _monitoring(t, [monitor])
        row = monitoring.trainer(config).trigger(config.model, "command", force=force)
        monitoring.wait(10)
    console.print(f"trigger {row.id}: {row.status} — {row.decision}", highlight=False, markup=False)
    if row.status in ("failed", "rejected"):
        raise typer.Exit(1)


@app.command("unlock")
@handle_errors
def unlock_cmd(
    name: str = typer.Argument(..., help="A model name, or a monitor's name (its model)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Release a model's retraining lock whose holder is gone (the trigger becomes abandoned).

    A lock also expires by itself when its holder stops heartbeating ([monitoring]
    retrain_lease); this is for not waiting. Exit 3 when no retraining holds the lock.
    """
    from conveyor.monitoring import ContinuousTrainer, MonitorHooks, Monitoring, load_monitors

    defaults, monitors = load_monitors(settings())
    config = monitors.get(name) or next((c for c in monitors.values() if c.model == name), None)
    model = config.model if config is not None else name
    with tracker() as t:
        monitoring = Monitoring(t, defaults, MonitorHooks())  # remote mode: the lease in the server's stores
        trainer = monitoring.trainer(config) if config is not None else ContinuousTrainer(t, None)
        row = trainer.unlock(model)
        monitoring.wait(10)  # the "retrain_failed" alert's webhook delivery
    if as_json:
        print_json(row.__dict__)
        return
    console.print(f"unlocked {model}: trigger {row.id} — {row.decision}", highlight=False, markup=False)


@app.command("history")
@handle_errors
def history_cmd(
    model: str = typer.Option(None, "--model"),
    what: str = typer.Option("evaluations", "--show", help="evaluations, alerts or triggers."),
    limit: int = typer.Option(50, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stored evaluations, alerts or retraining triggers, newest first."""
    from conveyor.store import MonitoringRepo

    if what not in ("evaluations", "alerts", "triggers"):
        raise InvalidInput(f"--show {what!r} is not one of evaluations, alerts, triggers", field="show", value=what)
    repo = MonitoringRepo()
    with tracker() as t:
        if getattr(t, "http", None) is not None:  # remote mode: the server's /api/v1/monitoring
            rows = _remote_history(t, what, model, limit)
        else:
            with t.store.read() as conn:
                if what == "evaluations":
                    rows = [{"id": r.id, "at": r.created_at, "monitor": r.monitor, "model": r.model,
                             "version": r.model_version, "status": r.status,
                             "drift_share": r.metrics.get("drift_share"), "accuracy": r.metrics.get("accuracy"),
                             "error": r.error} for r in repo.evaluations(conn, model=model, limit=limit)]
                elif what == "alerts":
                    rows = [{**a.__dict__, "at": a.created_at} for a in repo.alerts(conn, model=model, limit=limit)]
                else:
                    rows = [{**r.__dict__, "at": r.created_at} for r in repo.triggers(conn, model=model, limit=limit)]
    _print_history(rows, what, as_json)


def _remote_history(t: Any, what: str, model: str | None, limit: int) -> list[dict[str, Any]]:
    """The same rows from a conveyor server's /api/v1/monitoring (remote mode)."""
    path = {"evaluations": "/monitoring/evaluations", "alerts": "/monitoring/alerts",
            "triggers": "/monitoring/retrainings"}[what]
    params: dict[str, Any] = {"max_results": min(limit, 1000)}
    if model is not None:
        params["model"] = model
    found = t.http.json("GET", path, params=params)
    if what == "evaluations":
        return [{"id": e["id"], "at": e["created_at"], "monitor": e["monitor"], "model": e["model"],
                 "version": e["model_version"], "status": e["status"], "drift_share": e["metrics"].get("drift_share"),
                 "accuracy": e["metrics"].get("accuracy"), "error": e["error"]} for e in found["evaluations"]]
    if what == "alerts":
        keys = ("id", "evaluation_id", "monitor", "model", "kind", "rule", "value", "message", "created_at")
        return [{**{k: a[k] for k in keys}, "at": a["created_at"]} for a in found["alerts"]]
    keys = ("id", "model", "reason", "alert_id", "status", "run_id", "candidate_version", "decision", "created_at",
            "finished_at", "holder", "lease_until", "heartbeat_at")
    return [{**{k: r[k] for k in keys}, "at": r["created_at"]} for r in found["retrainings"]]


def _print_history(rows: list[dict[str, Any]], what: str, as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"no {what} yet")
        return
    keys: list[str] = [k for k in rows[0] if k not in ("created_at", "finished_at")]
    rows_any: list[dict[str, Any]] = rows
    table = Table(*keys)
    for row in rows_any:
        table.add_row(*[fmt_ms(row[k]) if k in ("at", "lease_until", "heartbeat_at") and row[k] is not None
                        else esc(json.dumps(row[k])) if isinstance(row[k], dict)
                        else _cell(row[k]) for k in keys])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else escape(str(value))  # decisions and names may hold [brackets]


@app.command("performance")
@handle_errors
def performance_cmd(
    model: str = typer.Argument(..., help="Registered model name."),
    every: str = typer.Option("1h", "--every", help="Window length, e.g. 15m, 1h, 1d."),
    since: str = typer.Option(None, "--since", help="ISO time or ms since the epoch."),
    score: str = typer.Option(None, "--score", help="Log column with the positive-class score (for ROC AUC)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Live metrics from feedback labels joined to the prediction log, per window and version,
    beside each version's offline metrics (from the run that trained it)."""
    from conveyor.monitoring import live_performance, parse_duration
    from conveyor.registry import Registry
    from conveyor.serving import read_prediction_log

    with tracker() as t:
        log = read_prediction_log(model, since=since, with_feedback=True, tracker=t)
        rows = live_performance(log, every=parse_duration(every, field="--every"), score=score)
        offline: dict[str, dict[str, float]] = {}
        for version in {r.version for r in rows if r.version}:
            try:
                mv = Registry(t).get_version(model, int(version))
                offline[version] = dict(t.get_run(mv.run_id).metrics) if mv.run_id else {}
            except (NotFound, ValueError):
                offline[version] = {}
    if as_json:
        print_json({"windows": [r.__dict__ for r in rows], "offline": offline})
        return
    if not rows:
        console.print(f"no logged predictions of {esc(model)} yet")
        return
    keys = sorted({k for r in rows for k in r.metrics if not k.endswith("_latency_ms")} | {"p95_latency_ms"})
    table = Table("window", "version", "rows", "labelled", *keys)
    for r in rows:
        table.add_row(fmt_ms(r.window_start), esc(r.version), str(r.rows), str(r.labelled_rows),
                      *[_f(r.metrics.get(k)) for k in keys])
    for version, metrics in sorted(offline.items()):
        table.add_row("[dim]offline[/]", esc(version), "", "", *[_f(metrics.get(k)) for k in keys])
    console.print(table)


# -- export (the prediction log joined with its feedback) --------------------------------------------
@app.command("export")
@handle_errors
def export_cmd(
    model: str = typer.Argument(..., help="Served model name."),
    out: Path = typer.Option(..., "--out", help="File to write (a new file, or --force to replace one)."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
    version: str = typer.Option(None, "--version", help="Only this model version."),
    since: str = typer.Option(None, "--since", help="ISO time or ms since the epoch."),
    until: str = typer.Option(None, "--until", help="ISO time or ms since the epoch."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Export the prediction log of MODEL joined with its feedback: one row per predicted
    row, with the version that answered and the label (empty where no feedback arrived)."""
    from rich.markup import escape

    from conveyor.serving._export import export_prediction_log

    with tracker() as t:
        done = export_prediction_log(model, out, fmt=fmt, version=version, since=since, until=until, force=force,
                                     tracker=t)
    if as_json:
        print_json({"path": str(done.path), "format": done.format, "rows": done.rows, "labelled": done.labelled,
                    "versions": list(done.versions)})
        return
    console.print(f"wrote {done.rows} rows ({done.labelled} with a label) of {escape(model)} "
                  f"version(s) {', '.join(escape(v) for v in done.versions)} to {escape(str(done.path))}",
                  highlight=False)
