"""``conveyor ci check`` and ``conveyor ci promote`` as functions: run the pipeline (or take
a candidate URI), register the candidate, evaluate the gate, render the report."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigError, InvalidInput, NotFound
from conveyor.gates import Evaluation, GateSpec, evaluate, evaluations, load_gate, promote
from conveyor.ci._report import render_report
from conveyor.registry import Event, ModelVersion, Registry
from conveyor.registry._registry import require_loadable


@dataclass(frozen=True)
class CheckResult:
    evaluation: Evaluation
    report: str
    candidate: ModelVersion

    @property
    def passed(self) -> bool:
        return self.evaluation.passed


def ci_check(
    registry: Registry,
    *,
    gate: str | GateSpec = "default",
    candidate: str | None = None,
    pipeline: str | None = None,
    data: Any = None,
    settings: Any = None,
    trusted: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Register the candidate (``runs:/…``, a pipeline run's candidate, or the candidate a
    pipeline declares, trained with ``params``), evaluate the gate against the champion, and
    render the Markdown report.

    The candidate is loaded and predicts its input example before it is registered, so a
    candidate that is not a working model package raises ``InvalidInput`` and leaves no
    version; a ``models:/`` candidate must be READY.

    Example::

        result = ci_check(registry, candidate=f"runs:/{run_id}/model")
        sys.exit(0 if result.passed else 1)
    """
    spec = gate if isinstance(gate, GateSpec) else load_gate(gate, settings)
    if candidate is None and pipeline is None:
        raise InvalidInput("give --candidate runs:/<id>/<path> or --pipeline module:pipeline", field="candidate")
    if params and pipeline is None:
        raise InvalidInput("parameters (-p) go with --pipeline", field="param", value=dict(params),
                           hint="the candidate of --candidate is already trained")
    if candidate is None:
        candidate = run_pipeline(registry, str(pipeline), params, settings)
    elif candidate.startswith("runs:/"):
        candidate = candidate_of_run(registry, candidate)
    if candidate.startswith("models:/"):
        version = registry.get(candidate)
        require_loadable(version)
    else:
        if not spec.model:
            raise ConfigError(
                f"gate {spec.name!r} names no model to register the candidate under",
                field=f"gates.{spec.name}.model", hint=f'set model = "<name>" in [gates.{spec.name}]',
            )
        # Load the candidate before it takes a version number: one that is not a package or
        # does not load and predict its example is refused here and leaves no version behind.
        checked = registry.verify(candidate, trusted=trusted)
        version = registry.register(
            candidate, spec.model, description=f"candidate checked by gate {spec.name!r}", trusted=trusted,
            verified=checked,
        )
    result = evaluate(spec, version.uri, data, registry=registry, trusted=trusted)
    champion = registry.get_version(version.name, result.champion_version) if result.champion_version else None
    return CheckResult(result, render_report(result, candidate=version, champion=champion), version)


def run_pipeline(registry: Registry, target: str, params: Mapping[str, Any] | None = None,
                 settings: Any = None) -> str:
    """Run ``module:pipeline`` (with ``params``: values, or ``-p`` strings converted to the
    pipeline's parameter types) and return the ``runs:/`` URI of the candidate it declares
    (``@pipeline(candidate=...)``, see ``conveyor.pipelines.train_candidate``)."""
    import sys
    from pathlib import Path

    from conveyor import pipelines
    from conveyor.pipelines._dag import coerce_params

    if str(Path.cwd()) not in sys.path:  # `conveyor ci check` runs from the project root
        sys.path.insert(0, str(Path.cwd()))
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(f"{target!r} is not module:pipeline", field="pipeline", value=target,
                           hint="e.g. --pipeline train:pipeline")
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise NotFound("pipeline", target, hint=str(exc)) from None
    if not isinstance(obj, pipelines.Pipeline):
        raise InvalidInput(f"{target} is a {type(obj).__name__}, not a @pipeline", field="pipeline", value=target)
    values = dict(params or {})
    texts = {k: v for k, v in values.items() if isinstance(v, str)}
    values.update(coerce_params(obj, texts))
    options: dict[str, Any] = {}
    if settings is not None:
        opts = pipelines.PipelineSettings.from_section(settings.section("pipelines"))
        options = {"executor": opts.executor, "ray_address": opts.ray_address, "max_workers": opts.max_workers,
                   "experiment": opts.experiment, "s3_endpoint_url": settings.store.s3_endpoint_url}
    result = pipelines.train_candidate(obj, params=values, tracker=registry.tracker, **options)
    return str(result.candidate)


def candidate_of_run(registry: Registry, uri: str) -> str:
    """``runs:/<pipeline run>`` (no path, e.g. a sweep's best point) → its candidate's URI."""
    from conveyor.tracking import parse_run_uri

    ref = parse_run_uri(uri)
    if ref.path:
        return uri
    tags = registry.tracker.get_run(ref.run_id).tags
    found = tags.get("conveyor.candidate")
    if not found:
        raise InvalidInput(
            f"run {ref.run_id} is not a pipeline run with a candidate model", field="candidate", value=uri,
            hint="give runs:/<run id>/<artifact path>, or the run of a pipeline declared with "
                 "@pipeline(candidate=...)",
        )
    return str(found)


def ci_promote(
    registry: Registry, *, gate: str | GateSpec = "default", version: int | None = None,
    alias: str = "champion", settings: Any = None,
) -> Event:
    """The CD step: promote ``version`` (default: the newest version whose latest evaluation
    by this gate passed) of the gate's model."""
    spec = gate if isinstance(gate, GateSpec) else load_gate(gate, settings)
    if not spec.model:
        raise ConfigError(f"gate {spec.name!r} names no model", field=f"gates.{spec.name}.model")
    if version is None:
        latest: dict[int, Evaluation] = {}
        for found in evaluations(registry, spec.model):
            if found.gate == spec.name and found.version is not None:
                latest.setdefault(found.version, found)
        passed = sorted(v for v, e in latest.items() if e.passed)
        if not passed:
            raise NotFound("passing evaluation", f"{spec.model} gate {spec.name}",
                           hint="`conveyor ci check` must pass before `conveyor ci promote`")
        version = passed[-1]
    return promote(spec.model, version, alias, registry=registry, reason=f"ci promote (gate {spec.name!r})")
