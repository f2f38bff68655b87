"""Pipelines: recent runs, one run's DAG (drawn here) with each step's status, cache hit or
miss, duration, logs, inputs and outputs, and the lineage graph from data to model to
deployment (every node links to its own page or to the lineage around it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.ui._access import Forbidden, allowed, require
from conveyor.ui._graph import GNode, draw
from conveyor.ui._kit import svg
from conveyor.ui._render import render

NAV = ("Pipelines", "/pipelines")
LOG_LIMIT = 20_000  # characters of a step's log shown inline


def _record(conn: Any, run_id: str) -> Any:
    import json

    from conveyor.store import PipelineRunRecord
    from conveyor.store._pipelines import pipeline_runs

    row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFound("pipeline run", run_id, hint="/pipelines lists the recent runs")
    return PipelineRunRecord(row.run_id, row.pipeline, row.executor, json.loads(row.dag), row.created_at)


def pipelines_page(request: Request) -> Response:
    from conveyor.store import PipelineRepo

    tracker = request.app.state.tracker
    repo = PipelineRepo()
    name = request.query_params.get("pipeline") or None

    def read(conn: Any) -> list[dict[str, Any]]:
        rows = []
        for r in repo.list_runs(conn, name, 100):
            run = tracker.store.runs.get(conn, r.run_id)
            if not allowed(request, "experiment", str(run.experiment_id)):
                continue
            execs = repo.executions_of(conn, r.run_id)
            rows.append({"record": r, "run": run, "steps": len(execs), "cached": sum(e.cached for e in execs),
                         "failed": sum(e.status == "FAILED" for e in execs)})
        return rows

    rows = tracker.store.query(read, what="listing pipeline runs")
    return render(request, "pipelines.html", title="Pipeline runs", rows=rows, pipeline=name)


def _step_cards(tracker: Any, record: Any, execs: list[Any], runs: dict[str, Any]) -> list[dict[str, Any]]:
    by_step = {e.step: e for e in execs}
    cards = []
    for spec in record.dag.get("steps", []):
        e = by_step.get(spec["id"])
        run = runs.get(e.run_id) if e else None
        log = None
        if e is not None:
            try:
                text = tracker.read_artifact(e.run_id, "logs/step.log").decode("utf-8", "replace")
                log = text if len(text) <= LOG_LIMIT else "…" + text[-LOG_LIMIT:]
            except ConveyorError:
                log = None
        duration = None
        if e is not None and e.ended_at is not None:
            duration = (e.ended_at - e.started_at) / 1000
        ref = _dataset_input(spec)
        cards.append({
            "dataset": ref, "data_href": _data_href(ref) if ref else None,
            "id": spec["id"], "spec": spec, "execution": e, "run": run, "log": log, "duration": duration,
            "status": (e.status if e else ("INPUT" if ref else "NOT RUN")),
            "cache": None if e is None else ("hit" if e.cached else "miss"),
        })
    return cards


def _dataset_input(spec: dict[str, Any]) -> str | None:
    """The data set reference of a ``conveyor.pipelines.dataset(...)`` input node, else None."""
    if spec.get("step", "").endswith(":_dataset_input"):
        ref = (spec.get("params") or {}).get("ref")
        return str(ref) if ref else None
    return None


def _data_href(ref: str) -> str:
    name, _, version = ref.replace("data:/", "").partition("@")
    return f"/datasets/{quote(name)}/{quote(version)}" if version else f"/datasets/{quote(name)}"


def _dag_svg(record: Any, cards: list[dict[str, Any]]) -> str:
    from conveyor.ui._render import _duration

    nodes, edges = [], []
    for c in cards:
        ref = _dataset_input(c["spec"])
        if ref is not None:  # a data set input: no execution of its own, it links to the version
            nodes.append(GNode(c["id"], c["id"], href=_data_href(ref), status="dataset_version", kind="data set",
                               detail=ref.replace("data:/", ""), attrs={"data-status": "input", "data-cache": ""}))
            continue
        status = "cached" if c["cache"] == "hit" and c["status"] == "FINISHED" else c["status"]
        detail = " · ".join(t for t in (f"cache {c['cache']}" if c["cache"] else "", _duration(c["duration"])) if t)
        nodes.append(GNode(c["id"], c["id"], href=f"#step-{quote(c['id'])}", status=status.replace(" ", "_"),
                           kind=c["status"].lower(), detail=detail,
                           attrs={"data-status": c["status"], "data-cache": c["cache"] or ""}))
        for arg, source in c["spec"].get("inputs", {}).items():
            edges.append((source.split(".")[0], c["id"], f"{source} → {c['id']}.{arg}"))
        for before in c["spec"].get("after", []):
            edges.append((before, c["id"], f"after {before}"))
    return draw(nodes, edges, title=f"DAG of pipeline {record.pipeline}")


def run_page(request: Request) -> Response:
    from conveyor.store import PipelineRepo

    tracker = request.app.state.tracker
    run_id = request.path_params["run_id"]
    repo = PipelineRepo()

    def read(conn: Any) -> tuple[Any, Any, list[Any], dict[str, Any]]:
        record = _record(conn, run_id)
        run = tracker.store.runs.get(conn, run_id)
        require(request, "experiment", str(run.experiment_id))
        execs = repo.executions_of(conn, run_id)
        return record, run, execs, {e.run_id: tracker.store.runs.get(conn, e.run_id) for e in execs}

    record, run, execs, runs = tracker.store.query(read, what=f"reading pipeline run {run_id}")
    cards = _step_cards(tracker, record, execs, runs)
    # lineage from the step that made the candidate reaches the model it registered and its alias
    candidate = (record.dag.get("candidate") or "").split(".")[0]
    made = next((e for e in execs if e.step == candidate), None)
    lineage = f"runs:/{made.run_id}" if made is not None else f"runs:/{run_id}"
    return render(request, "pipeline_run.html", title=f"Pipeline {record.pipeline}", record=record, run=run,
                  lineage=lineage,
                  cards=cards, dag=svg(_dag_svg(record, cards)),
                  cached=sum(1 for c in cards if c["cache"] == "hit"))


# -- lineage ----------------------------------------------------------------------------------------
def node_href(node: Any) -> str | None:
    """The page of a lineage node, if the UI has one."""
    if node.kind == "dataset_version" and "@" in node.id:
        name, _, version = node.id.rpartition("@")
        return f"/datasets/{quote(name)}/{quote(version)}"
    if node.kind == "model_version" and "/" in node.id:
        name, _, version = node.id.rpartition("/")
        return f"/models/{quote(name)}/versions/{quote(version)}"
    if node.kind == "alias" and "@" in node.id:
        return f"/models/{quote(node.id.rpartition('@')[0])}#aliases"
    if node.kind == "run":
        return f"/lineage?ref={quote('runs:/' + node.id, safe='')}"
    return None


def _node_label(node: Any) -> str:
    text = str(node)
    if node.kind == "run":
        return f"run {node.id[:8]}"
    if node.kind == "commit":
        return f"commit {node.id[:10]}"
    if node.kind == "alias":
        return node.id
    if node.kind == "artifact":
        run, _, path = node.id.partition("/")
        return f"{run[:8]}/{path}"
    return text.replace("data:/", "").replace("models:/", "")


def _deployments(tracker: Any, model_versions: list[Any]) -> list[tuple[Any, Any, str]]:
    """Alias nodes for model versions an alias points at (where they are deployed)."""
    from conveyor.data import Node
    from conveyor.registry import Registry

    out = []
    registry = Registry(tracker)
    for node in model_versions:
        name, _, version = node.id.rpartition("/")
        try:
            mv = registry.get_version(name, int(version))
        except (ConveyorError, ValueError):
            continue
        for alias in mv.aliases:
            out.append((node, Node("alias", f"{name}@{alias}"), "alias"))
    return out


def _check_exists(tracker: Any, node: Any, has_edges: bool) -> None:
    """``NotFound`` for a data set version, model version or run the stores do not hold
    (lineage alone would draw it as a lonely node)."""
    if node.kind == "dataset_version":
        from conveyor.data import get_version

        get_version(node.id, tracker=tracker)
    elif node.kind == "model_version":
        from conveyor.registry import Registry

        name, _, version = node.id.rpartition("/")
        if not version.isdigit():
            raise NotFound("model version", node.id, hint="models:/<name>/<number>")
        Registry(tracker).get_version(name, int(version))
    elif node.kind == "run":
        tracker.get_run(node.id)
    elif not has_edges:
        raise NotFound("lineage node", str(node), hint="nothing was recorded about it")


def _visibility(request: Request, tracker: Any) -> Any:
    """Whether the signed-in user may read a lineage node (its data set, model or run's experiment)."""
    experiments: dict[str, bool] = {}

    def visible(node: Any) -> bool:
        if node.kind == "dataset_version":
            return allowed(request, "data", node.id.rpartition("@")[0] or node.id)
        if node.kind in ("model_version", "alias"):
            return allowed(request, "model", node.id.replace("@", "/").rpartition("/")[0] or node.id)
        if node.kind in ("run", "artifact"):
            run_id = node.id.partition("/")[0]
            if run_id not in experiments:
                try:
                    experiments[run_id] = allowed(request, "experiment", str(tracker.get_run(run_id).experiment_id))
                except ConveyorError:
                    experiments[run_id] = False
            return experiments[run_id]
        return True

    return visible


def lineage_page(request: Request) -> Response:
    from conveyor.data import lineage_graph

    tracker = request.app.state.tracker
    ref = request.query_params.get("ref", "").strip()
    if not ref:
        raise InvalidInput("lineage needs a node", field="ref", value=ref,
                           hint="e.g. /lineage?ref=data:/train@1, runs:/<id> or models:/churn/2")
    graph = lineage_graph(tracker, ref, depth=6)  # a malformed ref is bad input (400), an unknown one 404
    _check_exists(tracker, graph.root, bool(graph.upstream or graph.downstream))
    edges = [(e.upstream, e.downstream, e.relation) for e in (*graph.upstream, *graph.downstream)]
    models = sorted({n for n in graph.nodes if n.kind == "model_version"}, key=str)
    edges += _deployments(tracker, models)
    visible = _visibility(request, tracker)
    if not visible(graph.root):
        raise Forbidden("you may not read this lineage node")
    edges = [(a, b, r) for a, b, r in edges if visible(a) and visible(b)]  # what the user may not read is left out
    nodes = {graph.root} | {a for a, _, _ in edges} | {b for _, b, _ in edges}
    ordered = sorted(nodes, key=str)
    gnodes = [GNode(str(n), _node_label(n), href=node_href(n), kind=n.kind.replace("_", " "),
                    status="root" if n == graph.root else n.kind, attrs={"data-kind": n.kind})
              for n in ordered]
    seen, gedges = set(), []
    for a, b, relation in edges:
        if (str(a), str(b)) not in seen:
            seen.add((str(a), str(b)))
            gedges.append((str(a), str(b), relation))
    drawn = draw(gnodes, gedges, title=f"lineage of {graph.root}")
    return render(request, "lineage.html", title=f"Lineage of {graph.root}", root=graph.root, graph=svg(drawn),
                  nodes=[(n, node_href(n)) for n in ordered], edges=gedges)


routes = [
    Route("/pipelines", pipelines_page, methods=["GET"]),
    Route("/pipelines/runs/{run_id}", run_page, methods=["GET"]),
    Route("/lineage", lineage_page, methods=["GET"]),
]
