"""One contract from pipeline to candidate model.

A pipeline declares ``@pipeline(candidate="train", evaluation="evaluate")``. When a run
finishes, the runner resolves the declaration into facts stored with the runs:

- the candidate: the model package in the candidate step's run (logged there with
  ``conveyor.models.log``, or the step's returned model packaged by the worker) — tag
  ``conveyor.candidate`` (``runs:/<step run>/<path>``) on the pipeline run;
- its evaluation: the evaluate step's metrics (returned with ``metrics=True`` or logged with
  ``conveyor.log_metric``), written to the candidate step's run and to the pipeline run;
- provenance on the candidate step's run: the pipeline run (tag ``conveyor.pipeline_run``),
  its git commit (copied when the step run opens) and the data set versions upstream of the
  step (tag ``conveyor.data.inputs``), the same on a cache hit.

``conveyor ci check --pipeline``, retraining by ``conveyor monitor`` and the quickstart all
call :func:`train_candidate`, so they read one declaration the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.errors import ConveyorError, InvalidInput
from conveyor.pipelines._dag import Graph, Pipeline
from conveyor.pipelines import _record
from conveyor.pipelines._record import BOOKKEEPING

HOW = ('declare it: @conveyor.pipeline(candidate="<step that returns or logs the model>", '
       'evaluation="<step that returns its metrics>")')


class PipelineFailed(ConveyorError, RuntimeError):
    """A pipeline run asked for a candidate did not produce one (a step failed)."""


def resolve_contract(tracker: Any, graph: Graph, steps: Mapping[str, Any], run_id: str) -> tuple[str | None, dict[str, float]]:
    """After a successful run: the candidate's ``runs:/`` URI and the evaluation metrics,
    recorded as tags and metrics (see the module docstring)."""
    evaluation: dict[str, float] = {}
    eval_run = steps[graph.evaluation].run_id if graph.evaluation else None
    if eval_run:
        metrics = tracker.get_run(eval_run).metrics
        evaluation = {k: float(v) for k, v in metrics.items() if k not in BOOKKEEPING}
    uri: str | None = None
    cand_run = steps[graph.candidate[0]].run_id if graph.candidate else None
    if cand_run:
        from conveyor.pipelines._remote import blobs_of
        from conveyor.pipelines._steprun import is_package

        blobs = blobs_of(tracker, run_id)

        packages = [a for a in tracker.list_artifacts(cand_run)
                    if a.is_dir and a.path.split("/", 1)[0] not in ("outputs", "logs") and is_package(blobs, a.digest)]
        chosen = [a for a in packages if a.path == "model"] or packages
        if chosen:
            uri = f"runs:/{cand_run}/{chosen[0].path}"
    from conveyor.entities import now_ms

    stamp = now_ms()
    from conveyor.pipelines import _remote

    if _remote.is_remote(tracker):
        _remote.Coordinator(tracker).contract(run_id, {
            "uri": uri, "evaluation_run": eval_run, "candidate_run": cand_run, "evaluation": evaluation})
        return uri, evaluation
    store = tracker.store

    def body(conn: Any) -> None:
        _record.record_contract(store, conn, run_id, graph.pipeline, uri=uri, eval_run=eval_run, cand_run=cand_run,
                                evaluation=evaluation, stamp=stamp)

    store.transaction(body, once=True, what="recording the pipeline's candidate")
    return uri, evaluation


def train_candidate(
    target: Pipeline | Graph,
    *,
    params: Mapping[str, Any] | None = None,
    tracker: Any = None,
    **options: Any,
) -> Any:
    """Run a pipeline that declares a candidate and return its ``PipelineResult`` (with
    ``.candidate``, the package's ``runs:/`` URI, and ``.evaluation``, the metrics).

    Raises ``InvalidInput`` when the pipeline declares no candidate and ``PipelineFailed``
    when a step failed (naming it and its error). ``options`` go to :func:`run`.

    Example::

        result = conveyor.pipelines.train_candidate(training, params={"C": 0.1})
        registry.register(result.candidate, "churn")
    """
    from conveyor.pipelines._runner import run

    graph = target(**dict(params or {})) if isinstance(target, Pipeline) else target
    if not isinstance(graph, Graph):
        raise InvalidInput(f"cannot run a {type(target).__name__}", field="pipeline", value=type(target).__name__,
                           hint="pass a @pipeline function")
    if graph.candidate is None:
        raise InvalidInput(f"pipeline {graph.pipeline!r} declares no candidate model", field="candidate",
                           value=graph.pipeline, hint=HOW)
    result = run(graph, tracker=tracker, **options)
    if not result.ok:
        failed = [(n, s) for n, s in result.steps.items() if s.status == "FAILED"]
        what = "; ".join(f"step {n!r} failed: {s.error}" for n, s in failed) or "a step failed"
        raise PipelineFailed(
            f"pipeline {graph.pipeline!r} (run {result.run_id}) produced no candidate: {what}",
            hint=f"`conveyor runs show {failed[0][1].run_id}` shows the traceback and the step's log"
            if failed and failed[0][1].run_id else "`conveyor pipeline runs` lists the run",
        )
    if result.candidate is None:
        node = graph.candidate[0]
        raise PipelineFailed(
            f"candidate step {node!r} of pipeline {graph.pipeline!r} left no model package in its run",
            hint="return the fitted model from the step, or log it inside the step with conveyor.models.log",
        )
    return result
