"""``conveyor ci check`` and ``conveyor ci promote`` as functions: run the pipeline (or take
a candidate URI), register the candidate, evaluate the gate, render the report."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigError, InvalidInput, NotFound
from conveyor.gates import Evaluation, GateSpec, evaluate, evaluations, load_gate, promote
from conveyor.ci._report import render_report
from conveyor.registry import Event, ModelVersion, Registry
from conveyor.registry._registry import require_loadable

META_FILE = "conveyor-model.json"


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
) -> CheckResult:
    """Register the candidate (``runs:/…`` or the model a pipeline produced), evaluate the
    gate against the champion, and render the Markdown report.

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
    if candidate is None:
        candidate = run_pipeline(registry, str(pipeline))
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


def run_pipeline(registry: Registry, target: str) -> str:
    """Run ``module:pipeline`` with ``conveyor.pipelines`` and return the ``runs:/`` URI of the
    model package one of its steps logged (the last one, in step order)."""
    from conveyor import pipelines

    import sys
    from pathlib import Path

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
    result = pipelines.run(obj, tracker=registry.tracker)
    if not result.ok:
        failed = {n: s.error for n, s in result.steps.items() if s.error}
        raise InvalidInput(f"pipeline {target} failed: {failed}", field="pipeline", value=target)
    run_ids = [s.run_id for s in result.steps.values() if s.run_id] + [result.run_id]
    for run_id in reversed(run_ids):
        for artifact in registry.tracker.list_artifacts(run_id):
            if artifact.is_dir and _is_package(registry, artifact.digest):
                return f"runs:/{run_id}/{artifact.path}"
    # No step logged a package: package the last model a step returned (the pipelines'
    # scikit-learn materializer stores a bare skops file, which a registry version is not).
    from conveyor import models

    for node, step in reversed(list(result.steps.items())):
        for output, info in step.outputs.items():
            if info.get("materializer") == "sklearn" and step.run_id:
                model = result.load(node, output, tracker=registry.tracker)
                models.log(model, "model", run_id=step.run_id, tracker=registry.tracker)
                return f"runs:/{step.run_id}/model"
    raise NotFound("model package", target, hint="return the model from a step, or log it with conveyor.models.log")


def _is_package(registry: Registry, digest: str) -> bool:
    from conveyor.blobs import Digest

    return any(entry.path == META_FILE for entry in registry.blobs.read_manifest(Digest.parse(digest)).entries)


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
