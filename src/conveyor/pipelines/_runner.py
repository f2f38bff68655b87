"""Running a pipeline: schedule the DAG, reuse the cache, run the rest on an executor.

The coordinator (this module, in the caller's process) owns every metadata write; steps
run elsewhere and only read and write the artifact store. Independent steps run at the
same time, up to the executor's slots. A failed step stops its downstream steps and
nothing else. Runs take no global lock: two pipeline runs in one project at once are
just two coordinators writing their own rows.
"""

from __future__ import annotations

import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.entities import RunStatus
from conveyor.errors import InvalidInput
from conveyor.pipelines import _datasets, _lineage, _record, _remote
from conveyor.pipelines._cache import Unfingerprintable, cache_key, outputs_intact
from conveyor.pipelines._dag import Graph, Node, Pipeline
from conveyor.pipelines._executors import Executor, make_executor
from conveyor.settings import find_project_root

#: on_event(node, status, detail): status is one of queued, running, cached, uncached (the step
#: cannot be cached; detail says why), finished, failed, skipped
EventHook = Callable[[str, str, str], None]


@dataclass(frozen=True)
class StepResult:
    """How one step of a pipeline run ended (``SKIPPED`` when an upstream step failed)."""

    node: str
    status: str
    cached: bool = False
    run_id: str | None = None
    cache_key: str | None = None
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    attempts: int = 0
    kind: str = "step"  # or "dataset": an input resolved by the coordinator, not run


@dataclass(frozen=True)
class PipelineResult:
    """A finished pipeline run: the tracking run id and each step's result."""

    run_id: str
    pipeline: str
    status: str
    steps: Mapping[str, StepResult]
    duration_s: float
    #: ``runs:/<step run>/<path>`` of the declared candidate's model package (``None``: none declared, or failed)
    candidate: str | None = None
    #: the declared evaluation step's metrics
    evaluation: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.FINISHED.value

    @property
    def cached(self) -> list[str]:
        return [n for n, s in self.steps.items() if s.cached]

    @property
    def step_count(self) -> int:
        """Steps proper (data set inputs are resolved, not run)."""
        return sum(1 for s in self.steps.values() if s.kind == "step")

    def load(self, node: str, output: str | None = None, *, tracker: Any = None) -> Any:
        """The value a step returned, read back from the artifact store.

        Example::

            result = conveyor.pipelines.run(train(C=1.0))
            metrics = result.load("evaluate")
        """
        from conveyor.pipelines._load import load_output

        return load_output(self.steps, node, output, tracker, self.run_id)


def _import_root(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return None
    depth = module_name.count(".") + (1 if Path(path).name == "__init__.py" else 0)
    return str(Path(path).resolve().parents[depth])


def _blob_reopen(blobs: Any, s3_endpoint_url: str | None) -> dict[str, Any]:
    """How a worker reopens the tracker's artifact store: its URL and every S3 setting it was
    opened with (endpoint, timeouts, retries, concurrency), not S3's defaults."""
    options = dict(getattr(blobs, "reopen", None) or {"url": blobs.url})
    if s3_endpoint_url is not None and str(options["url"]).startswith("s3://"):
        options["s3_endpoint_url"] = s3_endpoint_url  # an explicit run(s3_endpoint_url=…) wins
    return options


class _Run:
    def __init__(self, graph: Graph, tracker: Any, executor: Executor, *, use_cache: bool,
                 experiment_id: int, run_id: str, on_event: EventHook, s3_endpoint_url: str | None,
                 datasets: Mapping[str, tuple[str, dict[str, str]]], parent: Any = None) -> None:
        self.graph = graph
        self.experiment = getattr(parent, "experiment", "")
        self.context = {f: getattr(parent, f) for f in _record.CONTEXT_FIELDS if getattr(parent, f, None) is not None}
        self.tracker = tracker
        #: remote mode: the coordinator's writes go through the server, objects too
        self.remote = _remote.Coordinator(tracker) if _remote.is_remote(tracker) else None
        self.blobs = _remote.blobs_of(tracker, run_id)
        self.executor = executor
        self.use_cache = use_cache
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.on_event = on_event
        self.results: dict[str, StepResult] = {}
        self.refused: dict[str, str] = {}
        self.datasets = datasets
        for node_id, (ref, output) in datasets.items():
            self.results[node_id] = StepResult(node_id, "FINISHED", outputs={"output": output}, kind="dataset")
            on_event(node_id, "finished", ref)
        self.s3_endpoint_url = s3_endpoint_url
        project = find_project_root(Path.cwd()) or Path.cwd()
        roots = {str(project.resolve())} | {
            r for n in graph.nodes.values()
            if n.step is not _datasets.DATASET_STEP and (r := _import_root(n.step.module)) is not None
        }
        self.roots = tuple(sorted(roots))
        self.sys_path = [r for r in self.roots] + [str(Path.cwd())]

    def data_inputs(self, node: Node) -> list[str]:
        """The data set versions a step was (transitively) computed from, in graph order."""
        seen: set[str] = set()
        found: list[str] = []
        frontier = [node.id]
        while frontier:
            current = frontier.pop()
            for up in self.graph.nodes[current].upstream:
                if up in seen:
                    continue
                seen.add(up)
                if up in self.datasets:
                    found.append(self.datasets[up][0])
                else:
                    frontier.append(up)
        return sorted(found)

    def package_of(self, node: Node) -> str | None:
        """The output to package as a model, when ``node`` is the pipeline's candidate."""
        candidate = self.graph.candidate
        return candidate[1] if candidate is not None and candidate[0] == node.id else None

    def inputs_of(self, node: Node) -> dict[str, dict[str, str]]:
        return {arg: dict(self.results[h.node].outputs[h.output]) for arg, h in node.inputs.items()}

    def schedule(self) -> None:
        order = self.graph.order()
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.executor.slots, thread_name_prefix="conveyor-step") as pool:
            try:
                self._loop(order, running, pool)
            except BaseException:
                self.executor.close()  # Ctrl-C or a broken store: stop the running steps, not wait for them
                raise

    def _loop(self, order: list[str], running: dict[Future[StepResult], str], pool: ThreadPoolExecutor) -> None:
        while True:
            changed = True
            while changed:
                changed = False
                for node_id in order:
                    if node_id in self.results or node_id in running.values():
                        continue
                    node = self.graph.nodes[node_id]
                    failed = [u for u in node.upstream if u in self.results and self.results[u].status != "FINISHED"]
                    if failed:
                        self.results[node_id] = StepResult(node_id, "SKIPPED", error=f"upstream step {failed[0]!r} failed")
                        self.on_event(node_id, "skipped", f"because {failed[0]} failed")
                        changed = True
                        continue
                    if not all(u in self.results for u in node.upstream):
                        continue
                    hit = self.try_cache(node)
                    if hit is not None:
                        self.results[node_id] = hit
                        changed = True
                        continue
                    self.on_event(node_id, "running", "")
                    running[pool.submit(self.execute, node)] = node_id
            if not running:
                return
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                result = future.result()
                self.results[node_id] = result
                detail = f"{result.duration_s:.2f}s" + (f" after {result.attempts} attempts" if result.attempts > 1 else "")
                if result.status == "FINISHED":
                    self.on_event(node_id, "finished", detail)
                else:
                    self.on_event(node_id, "failed", result.error or "")

    def key_of(self, node: Node) -> tuple[str, dict[str, dict[str, str]], str | None]:
        """The cache key, the inputs, and why the step cannot be cached (``None`` if it can).

        A step that reaches a value without a stable fingerprint gets a key no other
        execution shares: it runs every time, and the reason names the value."""
        inputs = self.inputs_of(node)
        try:
            key = cache_key(
                step=node.step, params=node.params, inputs={k: v["digest"] for k, v in inputs.items()},
                roots=self.roots, extra={"package": self.package_of(node)},
            )
        except Unfingerprintable as exc:
            reason = (
                f"step {node.id!r} reads {exc}, which conveyor cannot fingerprint for the cache key; "
                f"pass it as a step parameter or input, or declare @step(cache_exclude=({exc.name!r},)) "
                "if it does not change the result (bump cache_version= when it does)"
            )
            return f"uncacheable:{uuid.uuid4().hex}", inputs, reason
        return key, inputs, None

    def try_cache(self, node: Node) -> StepResult | None:
        if not (self.use_cache and node.step.options.cache):
            return None
        key, inputs, refused = self.key_of(node)
        if refused is not None:
            self.refused[node.id] = refused
            self.on_event(node.id, "uncached", refused)
            return None
        if self.remote is not None:
            found = self.remote.lookup(self.run_id, node.id, key, list(node.step.options.outputs))
            if found is None:
                return None
            started = time.perf_counter()
            outputs = found["outputs"]
            # read where the reused outputs are recorded: the earlier pipeline run's objects
            metrics = self.step_metrics(node, outputs, _remote.run_blobs(self.tracker.http, found["pipeline_run_id"]))
            run_id = self.remote.open_step(self.run_id, {
                "step": node.id, "cache_key": key, "cache": "hit", "params": node.params,
                "data_inputs": self.data_inputs(node), "cached_from": found["run_id"], "metrics": metrics,
                "upstream": self.upstream_of(node)})
            return self.hit(node, run_id, found["run_id"], key, outputs, metrics, started)
        store = self.tracker.store
        candidates = store.query(lambda conn: _record.repo.cache_candidates(conn, key),
                                 what=f"looking up the cache of step {node.id}")
        for execution in candidates:
            outputs = {
                name: {"digest": o.digest, "materializer": o.materializer, "type_name": o.type_name}
                for name, o in execution.outputs.items()
            }
            if set(outputs) != set(node.step.options.outputs) or not outputs_intact(self.tracker.blobs, {
                n: o["digest"] for n, o in outputs.items()
            }):
                continue  # deleted or corrupted outputs: this execution cannot be reused
            started = time.perf_counter()
            metrics = self.step_metrics(node, outputs)

            def hit(conn: Any, execution: Any = execution, outputs: Any = outputs, metrics: Any = metrics) -> str:
                return _record.record_hit(
                    self.tracker, conn, experiment_id=self.experiment_id, parent_id=self.run_id, node=node.id,
                    key=key, params=node.params, context=self.context, data_inputs=self.data_inputs(node),
                    source_run=execution.run_id, outputs=outputs, metrics=metrics, upstream=self.upstream_of(node),
                )

            # the whole cache hit is one transaction, retried through a database blink; once:
            # a retry after a lost commit acknowledgement must not open a second step run
            run_id = store.transaction(hit, once=True, what=f"recording the cache hit of step {node.id}")
            return self.hit(node, run_id, execution.run_id, key, outputs, metrics, started)
        return None

    def hit(self, node: Node, run_id: str, source: str, key: str, outputs: Mapping[str, Mapping[str, str]],
            metrics: Mapping[str, float], started: float) -> StepResult:
        if metrics:  # outside the transaction: the metric buffer may write on its own
            self.tracker.log_metrics(self.run_id, dict(metrics))
        self.on_event(node.id, "cached", f"from run {source[:8]}")
        return StepResult(node.id, "FINISHED", True, str(run_id), key, dict(outputs), None,
                          time.perf_counter() - started, 0)

    def step_metrics(self, node: Node, outputs: Mapping[str, Mapping[str, str]], blobs: Any = None) -> dict[str, float]:
        if not node.step.options.metrics:
            return {}
        from conveyor.pipelines._load import read_output

        value = read_output(blobs or self.blobs, outputs[node.step.options.outputs[0]])
        return {k: float(v) for k, v in value.items()}

    def upstream_of(self, node: Node) -> list[str]:
        """The step's inputs as lineage URIs (recorded in the transaction that ends its run)."""
        return [
            self.datasets[h.node][0] if h.node in self.datasets else f"runs:/{self.results[h.node].run_id}/outputs/{h.output}"
            for h in node.inputs.values()
        ]

    def execute(self, node: Node) -> StepResult:
        started = time.perf_counter()
        options = node.step.options
        try:
            key, inputs, refused = self.key_of(node)
            cache_state = "miss" if self.use_cache and options.cache else "disabled"
            if refused is not None and cache_state == "miss":
                cache_state = "refused"
            if self.remote is not None:
                run_id = self.remote.open_step(self.run_id, {
                    "step": node.id, "cache_key": key, "cache": cache_state, "params": node.params,
                    "data_inputs": self.data_inputs(node),
                    "tags": {"conveyor.cache_refused": refused} if cache_state == "refused" else {}})
            else:
                run_id = _record.open_step(self.tracker, self.experiment_id, self.run_id, node.id, key, node.params,
                                           cache_state, context=self.context, data_inputs=self.data_inputs(node))
                if refused is not None and cache_state == "refused":
                    _record.tag(self.tracker, run_id, {"conveyor.cache_refused": refused})
        except Exception as exc:  # a bad step definition or an unreachable store fails this step only
            return StepResult(node.id, "FAILED", error=f"{type(exc).__name__}: {exc}", duration_s=time.perf_counter() - started)
        task = {
            "node": node.id, "module": node.step.module, "qualname": node.step.qualname,
            "sys_path": self.sys_path, "blobs": {"server_run": self.run_id, "server": self.tracker.server.model_dump(mode="json")}
            if self.remote is not None
            else _blob_reopen(self.tracker.blobs, self.s3_endpoint_url), "inputs": inputs, "params": node.params,
            "outputs": list(options.outputs), "metrics": options.metrics,
            "materializers": _registered_materializers(), "package": self.package_of(node),
            "trust": _trust_entries(),
            "run": {
                "id": run_id, "experiment_id": self.experiment_id, "experiment": self.experiment, "name": node.id,
                "parent_id": self.run_id, "start_time": int(time.time() * 1000),
                "git_commit": self.context.get("git_commit"),
                "params": {k: str(_record._param_text(v)) for k, v in node.params.items()},
                "tags": {"conveyor.step": node.id},
            },
        }
        attempts = 0
        outcome: dict[str, Any] = {}
        while attempts <= options.retries:
            attempts += 1
            try:
                outcome = self.executor.run(task, options)
            except Exception as exc:  # the executor itself broke (e.g. the Ray cluster went away)
                outcome = {"status": "FAILED", "outputs": {}, "logs": None, "error": f"{type(exc).__name__}: {exc}"}
            if outcome.get("status") == "FINISHED":
                break
        status = "FINISHED" if outcome.get("status") == "FINISHED" else "FAILED"
        metrics = dict(outcome.get("metrics") or {})
        duration = time.perf_counter() - started
        error = outcome.get("traceback") or outcome.get("error")
        end = {
            "status": status, "outputs": outcome.get("outputs") or {}, "logs": outcome.get("logs"),
            "metrics": metrics, "error": error, "tracking": outcome.get("tracking"),
            "bookkeeping": {"cache_hit": 0, "attempts": attempts, "duration_s": f"{duration:.3f}"},
            "upstream": self.upstream_of(node) if status == "FINISHED" else [],
        }
        if self.remote is not None:  # the server runs the same record_end (under an idempotency key)
            self.remote.close_step(self.run_id, run_id, end)
        else:
            # a step that ran must not be lost to a database blink; once: its points and rows land once
            self.tracker.store.transaction(lambda conn: _record.record_end(self.tracker, conn, run_id, **end),
                                           once=True, what=f"recording the end of step {node.id}")
        if metrics and status == "FINISHED":
            self.tracker.log_metrics(self.run_id, dict(metrics))
        return StepResult(
            node.id, status, False, run_id, key, outcome.get("outputs") or {},
            None if status == "FINISHED" else outcome.get("error"), duration, attempts,
        )


def heavy_modules(graph: Graph) -> list[str]:
    """Installed (not project) modules the steps' modules import — at top level or inside any
    function or method they define, so a helper's ``from sklearn… import …`` counts — plus
    those of the project modules they import: what a warm worker preloads."""
    import dis
    import inspect
    import types

    from conveyor.pipelines._cache import _distributions

    def imports(code: types.CodeType) -> set[str]:
        out = {i.argval for i in dis.get_instructions(code) if i.opname == "IMPORT_NAME"}
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                out |= imports(const)
        return out

    def scan(module: types.ModuleType, depth: int, seen: set[str], top: bool = False) -> set[str]:
        # a step's own module always (even one shipped in a package); installed modules it
        # imports are not walked into, their own imports load with them
        if module.__name__ in seen or (not top and module.__name__.split(".")[0] in dists):
            return set()
        seen.add(module.__name__)
        names: set[str] = set()
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType):
                names.add(value.__name__)
                if depth > 0:
                    names |= scan(value, depth - 1, seen)
                continue
            value = getattr(value, "func", value) if hasattr(value, "options") else value
            members = list(vars(value).values()) if inspect.isclass(value) else [value]
            for member in members:
                member = getattr(member, "__func__", member)
                code = getattr(member, "__code__", None)
                if isinstance(code, types.CodeType) and getattr(member, "__module__", None) == module.__name__:
                    names |= imports(code)
        return names

    dists = _distributions()
    found: set[str] = set()
    seen: set[str] = set()
    for node in graph.nodes.values():
        if node.step is _datasets.DATASET_STEP:
            continue
        module = sys.modules.get(node.step.module)
        names = scan(module, 1, seen, top=True) if module is not None else set()
        found |= {n for n in names if n.split(".")[0] in dists and n.split(".")[0] != "conveyor"}
    roots = {n.split(".")[0] for n in found}
    if "sklearn" in roots:
        found.add("skops.io")  # the materializer of estimators
    if roots & {"pandas", "sklearn"} or any(n.step is _datasets.DATASET_STEP for n in graph.nodes.values()):
        found |= {"pandas", "pyarrow.parquet"}  # data sets and frames travel as Parquet
    return sorted(m for m in found if all(p.isidentifier() for p in m.split(".")))


def _trust_entries() -> list[str]:
    """The driver's trust policy (``[models] trusted_modules`` plus ``--trust``), which the
    worker process applies before loading a step's inputs (skops estimators, model packages)."""
    from conveyor.models import current_trust

    return list(current_trust().entries)


def _registered_materializers() -> dict[str, str]:
    from conveyor.pipelines import _materializers

    return dict(_materializers._registered)


def run(
    target: Pipeline | Graph,
    *,
    params: Mapping[str, Any] | None = None,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    cache: bool = True,
    experiment: str | None = None,
    tracker: Any = None,
    max_workers: int | None = None,
    on_event: EventHook | None = None,
    s3_endpoint_url: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> PipelineResult:
    """Run a pipeline (or a graph built by calling one) and wait for it.

    Every step is a child run of the pipeline run; steps whose cache key matches an earlier
    finished execution with intact outputs are not run again. Returns how each step ended;
    a failed step does not raise (``result.ok`` is False, ``result.steps[name].error`` says why).

    In remote mode (``[server] url``, or a ``RemoteTracker``) every record and output goes
    through the server's ``/api/v1/pipelines`` routes and the client opens no store; steps run
    on either executor (``ray`` workers get the server's URL and token, never the stores').

    Example::

        result = conveyor.pipelines.run(train, params={"C": 0.5}, executor="local")
        assert result.ok and "load" in result.cached
    """
    if isinstance(target, Pipeline):
        graph = target(**dict(params or {}))
    elif isinstance(target, Graph):
        if params:
            raise InvalidInput("params go to the pipeline call when passing a graph", field="params")
        graph = target
    else:
        raise InvalidInput(
            f"cannot run a {type(target).__name__}", field="target", value=type(target).__name__,
            hint="pass a @pipeline function or the graph its call returned",
        )
    graph.order()
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    remote = _remote.is_remote(tracker)
    # Data set references are pinned (and a missing one reported) before anything starts.
    pin = _remote.Coordinator(tracker).dataset_input if remote else (lambda ref: _datasets.resolve(tracker, ref))
    datasets = {
        node.id: pin(node.params["ref"])
        for node in graph.nodes.values() if node.step is _datasets.DATASET_STEP
    }
    if s3_endpoint_url is None:  # the endpoint the tracker's artifact store was opened with
        s3_endpoint_url = getattr(tracker, "s3_endpoint_url", None)
    engine = executor if not isinstance(executor, str) else make_executor(
        executor, ray_address=ray_address, max_workers=max_workers, preload=heavy_modules(graph),
        settings=getattr(tracker, "project_settings", None), remote=remote,
    )
    if isinstance(executor, str) and hasattr(engine, "warm"):
        # steps will surely run (no cache, or a pipeline never run here): start the warm
        # server now, its imports overlap the run's setup; otherwise the first miss starts it
        if remote:
            first_time = False  # not asked of the server: the first step that runs starts it
        else:
            first_time = not tracker.store.query(lambda conn: _record.repo.list_runs(conn, graph.pipeline, 1),
                                                 what=f"reading the runs of pipeline {graph.pipeline}")
        if not cache or first_time:
            engine.warm()
    started = time.perf_counter()
    parent = tracker.create_run(
        experiment or graph.pipeline, name=graph.pipeline,
        tags={"conveyor.pipeline": graph.pipeline, "conveyor.executor": engine.name, **(tags or {})},
    )
    if graph.params:
        tracker.log_params(parent.id, {k: _record._param_text(v) for k, v in graph.params.items()})
    if remote:
        _remote.Coordinator(tracker).create_run(parent.id, graph.pipeline, engine.name, graph.describe())
    else:
        tracker.store.transaction(
            lambda conn: _record.repo.create_run(conn, parent.id, graph.pipeline, engine.name, graph.describe()),
            once=True, what="recording the pipeline run",
        )
    state = _Run(
        graph, tracker, engine, use_cache=cache, experiment_id=parent.experiment_id, run_id=parent.id,
        on_event=on_event or (lambda *_: None), s3_endpoint_url=s3_endpoint_url, datasets=datasets, parent=parent,
    )
    _lineage.record_inputs(tracker, parent.id, [ref for ref, _ in datasets.values()])
    try:
        state.schedule()
    except BaseException as exc:
        ended = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        tracker.end_run(parent.id, ended, error="".join(traceback.format_exception(exc)))
        raise
    results = {n: state.results[n] for n in graph.order()}
    failed = [n for n, r in results.items() if r.status != "FINISHED"]
    cached = sum(r.cached for r in results.values())
    steps = sum(1 for r in results.values() if r.kind == "step")
    tracker.set_tags(parent.id, {"conveyor.cached_steps": f"{cached}/{steps}"})
    error = None
    candidate: str | None = None
    evaluation: dict[str, float] = {}
    if failed:
        error = "; ".join(f"{n}: {results[n].error}" for n in failed if results[n].status == "FAILED")
    elif graph.candidate or graph.evaluation:
        from conveyor.pipelines._candidate import resolve_contract

        candidate, evaluation = resolve_contract(tracker, graph, results, parent.id)
    tracker.end_run(parent.id, RunStatus.FAILED if failed else RunStatus.FINISHED, error=error)
    status = "FAILED" if failed else "FINISHED"
    return PipelineResult(parent.id, graph.pipeline, status, results, time.perf_counter() - started,
                          candidate, evaluation)
