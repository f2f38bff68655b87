"""``@step`` and ``@pipeline``: calling a pipeline builds its DAG from lazy handles.

Inside a pipeline function, calling a step does not run it: it adds a node to the graph
being built and returns a :class:`Handle` (or a tuple of them for ``outputs=(...)``) that
later steps take as arguments. Arguments that are not handles are the step's parameters.
Outside a pipeline, calling a step runs the plain function.
"""

from __future__ import annotations

import contextvars
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from conveyor.errors import InvalidInput

_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("conveyor_pipeline_graph", default=None)


def current_graph() -> Graph | None:
    """The graph a pipeline call is building right now, if any."""
    return _building.get()


@dataclass(frozen=True)
class StepOptions:
    """How a step runs and is cached."""

    outputs: tuple[str, ...] = ("output",)
    cache: bool = True
    cache_version: str | None = None
    env: tuple[str, ...] | None = None
    retries: int = 0
    timeout: float | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None
    metrics: bool = False
    cache_exclude: tuple[str, ...] = ()


class Step:
    """A function decorated with ``@step``; see :func:`step`."""

    def __init__(self, func: Callable[..., Any], options: StepOptions) -> None:
        self.func = func
        self.options = options
        self.name = func.__name__
        self.module = func.__module__
        self.qualname = func.__qualname__
        self.signature = inspect.signature(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __repr__(self) -> str:
        return f"<step {self.module}:{self.qualname}>"

    def __call__(self, *args: Any, after: Sequence[Handle | str] = (), **kwargs: Any) -> Any:
        graph = _building.get()
        if graph is None:
            return self.func(*args, **kwargs)
        return graph.add(self, args, kwargs, after)


@overload
def step(func: Callable[..., Any]) -> Step: ...


@overload
def step(
    func: None = None,
    *,
    outputs: Sequence[str] | None = None,
    cache: bool = True,
    cache_version: str | None = None,
    env: Sequence[str] | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: int | None = None,
    metrics: bool = False,
    cache_exclude: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    func: Callable[..., Any] | None = None,
    *,
    outputs: Sequence[str] | None = None,
    cache: bool = True,
    cache_version: str | None = None,
    env: Sequence[str] | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: int | None = None,
    metrics: bool = False,
    cache_exclude: Sequence[str] = (),
) -> Any:
    """Declare a pipeline step.

    ``outputs`` names several return values (the function returns a tuple); ``cache=False``
    always runs it; ``cache_version`` is mixed into its cache key; ``env`` lists the packages
    whose versions count for the cache (default: those the step's module imports);
    ``retries``/``timeout`` (seconds) apply per attempt; ``cpus``/``gpus``/``memory`` (bytes)
    are Ray resources; ``metrics=True`` logs the returned ``dict`` of numbers as metrics of
    the step and of the pipeline run. ``cache_exclude`` names module-level values (or
    closure variables) the cache key skips: values that do not change the step's result,
    such as a logger or a client (bump ``cache_version`` when one does).

    Example::

        @conveyor.step(outputs=("train", "test"))
        def split(frame, test_size: float = 0.25): ...
    """
    names = tuple(outputs) if outputs else ("output",)
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise InvalidInput(f"step outputs {names!r} must be distinct identifiers", field="outputs", value=names)
    if retries < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInput(
            f"retries={retries!r}, timeout={timeout!r}: retries must be ≥ 0 and timeout > 0",
            field="retries" if retries < 0 else "timeout", value=retries if retries < 0 else timeout,
        )
    excluded = (cache_exclude,) if isinstance(cache_exclude, str) else tuple(cache_exclude)
    if not all(isinstance(n, str) and n.isidentifier() for n in excluded):
        raise InvalidInput(f"cache_exclude {excluded!r} must be names", field="cache_exclude", value=excluded,
                           hint='e.g. cache_exclude=("logger",)')
    options = StepOptions(
        names, cache, cache_version, tuple(env) if env is not None else None,
        retries, timeout, cpus, gpus, memory, metrics, excluded,
    )

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, options)

    return wrap(func) if func is not None else wrap


@dataclass(frozen=True)
class Handle:
    """A lazy reference to one output of one step invocation in a graph being built."""

    node: str
    output: str
    graph_id: int

    def __repr__(self) -> str:
        return f"<output {self.node}.{self.output}>"


@dataclass
class Node:
    """One invocation of a step in a graph."""

    id: str
    step: Step
    inputs: dict[str, Handle]
    params: dict[str, Any]
    after: list[str]

    @property
    def upstream(self) -> list[str]:
        return sorted({h.node for h in self.inputs.values()} | set(self.after))


@dataclass
class Graph:
    """The DAG of one pipeline call: nodes in the order they were added."""

    pipeline: str
    params: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    #: ``(node, output)`` whose value is the pipeline's candidate model, if declared
    candidate: tuple[str, str] | None = None
    #: the node whose metrics evaluate the candidate, if declared
    evaluation: str | None = None

    def add(
        self, step_: Step, args: tuple[Any, ...], kwargs: dict[str, Any], after: Sequence[Handle | str],
        *, name: str | None = None,
    ) -> Any:
        base = name or step_.name
        node_id, n = base, 2
        while node_id in self.nodes:
            node_id, n = f"{base}_{n}", n + 1
        try:
            bound = step_.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(
                f"step {node_id!r} in pipeline {self.pipeline!r}: {exc}",
                field=node_id, hint="pass every required argument (a step's output or a value)",
            ) from None
        inputs: dict[str, Handle] = {}
        params: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, Handle):
                if value.graph_id != id(self):
                    raise InvalidInput(
                        f"argument {name!r} of step {node_id!r} comes from another pipeline call",
                        field=f"{node_id}.{name}",
                    )
                inputs[name] = value
            elif isinstance(value, tuple) and value and all(isinstance(v, Handle) for v in value):
                raise InvalidInput(
                    f"argument {name!r} of step {node_id!r} is a tuple of outputs",
                    field=f"{node_id}.{name}", hint="unpack the step's outputs: a, b = split(...)",
                )
            else:
                params[name] = _check_param(node_id, name, value)
        names = [a.node if isinstance(a, Handle) else str(a) for a in after]
        self.nodes[node_id] = Node(node_id, step_, inputs, params, names)
        handles = tuple(Handle(node_id, o, id(self)) for o in step_.options.outputs)
        return handles[0] if len(handles) == 1 else handles

    def order(self) -> list[str]:
        """Topological order; ``InvalidInput`` naming a cycle or an unknown upstream step."""
        for node in self.nodes.values():
            for up in node.upstream:
                if up not in self.nodes:
                    raise InvalidInput(
                        f"step {node.id!r} depends on {up!r}, which is not a step of pipeline {self.pipeline!r}",
                        field=node.id, value=up, hint=f"steps: {', '.join(self.nodes) or '(none)'}",
                    )
        done: list[str] = []
        state: dict[str, int] = {}

        def visit(node_id: str, path: list[str]) -> None:
            if state.get(node_id) == 2:
                return
            if state.get(node_id) == 1:
                cycle = path[path.index(node_id):] + [node_id]
                raise InvalidInput(
                    f"pipeline {self.pipeline!r} has a cycle: {' -> '.join(cycle)}",
                    field="after", value=cycle, hint="remove one of the dependencies",
                )
            state[node_id] = 1
            for up in self.nodes[node_id].upstream:
                visit(up, [*path, node_id])
            state[node_id] = 2
            done.append(node_id)

        for node_id in self.nodes:
            visit(node_id, [])
        return done

    def downstream(self, node_id: str) -> set[str]:
        """Every node that (transitively) depends on ``node_id``."""
        out: set[str] = set()
        frontier = [node_id]
        while frontier:
            current = frontier.pop()
            for node in self.nodes.values():
                if current in node.upstream and node.id not in out:
                    out.add(node.id)
                    frontier.append(node.id)
        return out

    def describe(self) -> dict[str, Any]:
        """The DAG as JSON-able data (stored with each pipeline run)."""
        return {
            "pipeline": self.pipeline,
            "params": self.params,
            "candidate": ".".join(self.candidate) if self.candidate else None,
            "evaluation": self.evaluation,
            "steps": [
                {
                    "id": n.id,
                    "step": f"{n.step.module}:{n.step.qualname}",
                    "inputs": {k: f"{h.node}.{h.output}" for k, h in n.inputs.items()},
                    "params": n.params,
                    "after": n.after,
                    "outputs": list(n.step.options.outputs),
                }
                for n in self.nodes.values()
            ],
        }


def _check_param(node_id: str, name: str, value: Any) -> Any:
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"parameter {name!r} of step {node_id!r} is a {type(value).__name__}, not a JSON value",
            field=f"{node_id}.{name}", value=type(value).__name__,
            hint="pass data between steps as step outputs; parameters must be numbers, strings, lists or dicts",
        ) from None
    return value


class Pipeline:
    """A function decorated with ``@pipeline``; calling it returns its :class:`Graph`."""

    def __init__(self, func: Callable[..., Any], name: str | None = None, *,
                 candidate: str | None = None, evaluation: str | None = None) -> None:
        for label, value in (("candidate", candidate), ("evaluation", evaluation)):
            if value is not None and (not isinstance(value, str) or not all(p.isidentifier() for p in value.split("."))):
                raise InvalidInput(f"{label}={value!r} is not a step name", field=label, value=value,
                                   hint=f'e.g. @pipeline({label}="train")' if label == "candidate"
                                   else 'e.g. @pipeline(candidate="train", evaluation="evaluate")')
        self.func = func
        self.name = name or func.__name__
        self.candidate = candidate
        self.evaluation = evaluation
        self.module = func.__module__
        self.signature = inspect.signature(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __repr__(self) -> str:
        return f"<pipeline {self.module}:{self.func.__qualname__}>"

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.signature.parameters.items() if p.default is not inspect.Parameter.empty}

    def __call__(self, **params: Any) -> Graph:
        unknown = sorted(set(params) - set(self.signature.parameters))
        if unknown:
            raise InvalidInput(
                f"pipeline {self.name!r} has no parameter {unknown[0]!r}",
                field=unknown[0], value=params[unknown[0]],
                hint=f"parameters: {', '.join(self.signature.parameters) or '(none)'}",
            )
        resolved = {**self.defaults(), **params}
        missing = [k for k in self.signature.parameters if k not in resolved]
        if missing:
            raise InvalidInput(f"pipeline {self.name!r} needs parameter {missing[0]!r}", field=missing[0])
        graph = Graph(self.name, {k: _check_param(self.name, k, v) for k, v in resolved.items()})
        token = _building.set(graph)
        try:
            self.func(**resolved)
        finally:
            _building.reset(token)
        graph.order()  # cycles and unknown steps fail here, before anything runs
        graph.candidate, graph.evaluation = self._contract(graph)
        return graph

    def _contract(self, graph: Graph) -> tuple[tuple[str, str] | None, str | None]:
        """Resolve ``candidate="node[.output]"`` and ``evaluation="node"`` against the graph."""
        steps = ", ".join(n for n, node in graph.nodes.items() if node.step.name != "_dataset_input") or "(none)"
        candidate: tuple[str, str] | None = None
        if self.candidate is not None:
            node_id, _, output = self.candidate.partition(".")
            node = graph.nodes.get(node_id)
            if node is None:
                raise InvalidInput(f"pipeline {self.name!r} declares candidate={self.candidate!r}, which is not one "
                                   "of its steps", field="candidate", value=self.candidate, hint=f"steps: {steps}")
            outputs = node.step.options.outputs
            if not output:
                if len(outputs) > 1:
                    raise InvalidInput(
                        f"candidate step {node_id!r} has outputs {', '.join(outputs)}: name the model's",
                        field="candidate", value=self.candidate, hint=f'e.g. candidate="{node_id}.{outputs[0]}"')
                output = outputs[0]
            elif output not in outputs:
                raise InvalidInput(f"step {node_id!r} has no output {output!r}", field="candidate",
                                   value=self.candidate, hint=f"outputs: {', '.join(outputs)}")
            candidate = (node_id, output)
        if self.evaluation is not None and self.evaluation not in graph.nodes:
            raise InvalidInput(f"pipeline {self.name!r} declares evaluation={self.evaluation!r}, which is not one "
                               "of its steps", field="evaluation", value=self.evaluation, hint=f"steps: {steps}")
        return candidate, self.evaluation


@overload
def pipeline(func: Callable[..., Any]) -> Pipeline: ...


@overload
def pipeline(
    func: None = None, *, name: str | None = None, candidate: str | None = None, evaluation: str | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    func: Callable[..., Any] | None = None, *, name: str | None = None, candidate: str | None = None,
    evaluation: str | None = None,
) -> Any:
    """Declare a pipeline: a function that calls steps. Calling it builds the DAG.

    ``candidate`` names the step (``"train"``, or ``"train.model"`` for one output of a
    step with several) whose model is the pipeline's candidate: the model package that
    step logged with ``conveyor.models.log``, or else the value it returned, packaged by
    conveyor. ``evaluation`` names the step whose metrics (returned with ``metrics=True``
    or logged with ``conveyor.log_metric``) evaluate it. ``conveyor ci check --pipeline``,
    retraining by ``conveyor monitor`` and :func:`conveyor.pipelines.train_candidate` all
    use this declaration.

    Example::

        @conveyor.pipeline(candidate="fit", evaluation="evaluate")
        def train(C: float = 1.0):
            train, test = split(load())
            evaluate(fit(train, C=C), test)

        graph = train(C=0.5)             # nothing has run yet
        conveyor.pipelines.run(graph)    # now it runs (cached, in parallel)
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name, candidate=candidate, evaluation=evaluation)

    return wrap(func) if func is not None else wrap


def coerce_params(pipe: Pipeline, raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``-p KEY=VALUE`` strings into the types of the pipeline's defaults/annotations."""
    out: dict[str, Any] = {}
    for key, text in raw.items():
        param = pipe.signature.parameters.get(key)
        if param is None:
            raise InvalidInput(
                f"pipeline {pipe.name!r} has no parameter {key!r}", field=key, value=text,
                hint=f"parameters: {', '.join(pipe.signature.parameters) or '(none)'}",
            )
        kind = type(param.default) if param.default not in (inspect.Parameter.empty, None) else None
        annotation = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
        kind = kind or {"int": int, "float": float, "bool": bool, "str": str}.get(annotation)
        out[key] = _convert(key, text, kind)
    return out


def _convert(key: str, text: str, kind: type | None) -> Any:
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if kind in (int, float):
            return kind(text)
        if kind is str:
            return text
        return json.loads(text)
    except ValueError:
        if kind is None:
            return text
        raise InvalidInput(
            f"parameter {key!r} must be a {kind.__name__}, got {text!r}", field=key, value=text
        ) from None
