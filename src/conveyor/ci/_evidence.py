"""What a project's stores and files prove, read once for ``conveyor score``.

Every fact is read from a record conveyor wrote when the thing happened (a gate
evaluation, a registry event, a monitor evaluation, a step execution, a run), or from a
file of the project (a CI workflow). Deleted runs prove nothing. Manual results are runs
of the experiment ``ml-test-score`` written by ``conveyor score record``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANUAL_EXPERIMENT", "Facts", "ManualRecord", "collect"]

MANUAL_EXPERIMENT = "ml-test-score"
TAG_TEST = "score.test"
TAG_EVIDENCE = "score.evidence"
TAG_REF = "score.ref"


@dataclass(frozen=True)
class ManualRecord:
    test: str
    evidence: str
    run_id: str
    ref: str | None


@dataclass
class Facts:
    """Counts and names, each with enough detail to be printed as evidence."""

    root: Path
    runs: int = 0
    runs_with_commit: int = 0
    runs_clean: int = 0
    runs_with_packages: int = 0
    schema_versions: list[str] = field(default_factory=list)
    gate_evaluations: int = 0
    gate_checks: Counter[str] = field(default_factory=Counter)  # kind → evaluations that judged it
    promotions: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[str] = field(default_factory=list)
    package_versions: int = 0
    versions: int = 0
    sweeps: set[str] = field(default_factory=set)
    pipeline_runs: int = 0
    reproduced: list[str] = field(default_factory=list)  # steps whose repeated executions matched
    not_reproduced: list[str] = field(default_factory=list)
    monitor_evaluations: int = 0
    monitor_metrics: set[str] = field(default_factory=set)
    monitor_rules: set[str] = field(default_factory=set)
    triggers: Counter[str] = field(default_factory=Counter)
    served_models: set[str] = field(default_factory=set)
    feedback_models: set[str] = field(default_factory=set)
    canaries: list[str] = field(default_factory=list)
    ci_files: dict[str, str] = field(default_factory=dict)
    manual: dict[str, list[ManualRecord]] = field(default_factory=lambda: defaultdict(list))
    ignored: list[str] = field(default_factory=list)

    def rule_on(self, *metrics: str) -> list[str]:
        """Rules (as written) that name one of ``metrics``."""
        return sorted(r for r in self.monitor_rules if any(_names(r, m) for m in metrics))

    def ci_runs(self, *needles: str) -> list[str]:
        """CI workflow files that contain one of ``needles``."""
        return sorted(p for p, text in self.ci_files.items() if any(n in text for n in needles))


def _names(rule: str, metric: str) -> bool:
    import re

    return re.search(rf"(?<![\w.]){re.escape(metric)}(?![\w])", rule) is not None


def collect(tracker: Any, root: Path) -> Facts:
    """Read every fact from the tracker's stores and the project folder ``root``."""

    def read(conn: Any) -> Facts:  # fresh facts each attempt: a retried read starts over
        facts = Facts(root=root)
        live = _runs(conn, facts)
        _datasets(conn, facts)
        _registry(conn, facts, live)
        _pipelines(conn, facts, live)
        _monitoring(conn, facts)
        _serving(conn, facts)
        _manual(conn, facts, live)
        return facts

    facts: Facts = tracker.store.query(read, what="collecting the CI evidence")
    _ci_files(root, facts)
    return facts


def _runs(conn: Any, facts: Facts) -> set[str]:
    from sqlalchemy import select

    from conveyor.store import runs

    live: set[str] = set()
    query = select(runs.c.id, runs.c.git_commit, runs.c.git_dirty, runs.c.packages_digest).where(
        runs.c.deleted_at.is_(None))
    for run_id, commit, dirty, packages in conn.execute(query):
        live.add(run_id)
        facts.runs += 1
        facts.runs_with_commit += commit is not None
        facts.runs_clean += commit is not None and dirty is False
        facts.runs_with_packages += packages is not None
    return live


def _datasets(conn: Any, facts: Facts) -> None:
    from sqlalchemy import select

    from conveyor.store import dataset_versions, datasets

    query = (select(datasets.c.name, dataset_versions.c.version)
             .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
             .where(dataset_versions.c.profile.is_not(None))
             .order_by(datasets.c.name, dataset_versions.c.version))
    facts.schema_versions = [f"data:/{name}@{version}" for name, version in conn.execute(query)]


def _registry(conn: Any, facts: Facts, live: set[str]) -> None:
    from sqlalchemy import select

    from conveyor.store import gate_evaluations, model_versions, registered_models, registry_events

    names = {mid: name for mid, name in conn.execute(select(registered_models.c.id, registered_models.c.name))}
    passed: set[str] = set()
    for eid, ok, evidence in conn.execute(
            select(gate_evaluations.c.id, gate_evaluations.c.passed, gate_evaluations.c.evidence)):
        facts.gate_evaluations += 1
        if ok:
            passed.add(eid)
        try:
            parsed = json.loads(evidence)
        except ValueError:
            continue
        checks = parsed.get("checks", []) if isinstance(parsed, dict) else parsed
        judged = [c for c in checks if isinstance(c, dict) and c.get("passed") is not None]
        kinds = {c.get("kind") for c in judged}
        if any(c.get("kind") == "slices" and (c.get("evidence") or {}).get("protected") for c in judged):
            kinds.add("slices.protected")  # inclusion: slices over declared protected columns
        if any(c.get("kind") == "data" and (c.get("evidence") or {}).get("schema_file") for c in judged):
            kinds.add("data.schema")  # the team's own rules (a kept schema file), not only the signature
        if any(c.get("kind") == "feature_cost" and (c.get("evidence") or {}).get("features") for c in judged):
            kinds.add("feature_cost.measured")  # a per-feature measurement, not an empty check
        facts.gate_checks.update(k for k in kinds if k)
    for mid, version, run_id, is_dir in conn.execute(select(
            model_versions.c.model_id, model_versions.c.version, model_versions.c.run_id, model_versions.c.is_dir)):
        facts.versions += 1
        facts.package_versions += bool(is_dir and run_id in live)
    query = select(registry_events.c.model_id, registry_events.c.kind, registry_events.c.alias,
                   registry_events.c.to_value, registry_events.c.forced, registry_events.c.evaluation_id)
    for mid, kind, alias, to_value, forced, evaluation_id in conn.execute(query):
        uri = f"models:/{names.get(mid, mid)}@{alias}"
        if kind == "rollback":
            facts.rollbacks.append(f"{uri} → v{to_value}")
        elif kind == "alias" and to_value:
            facts.promotions.append({"uri": uri, "version": to_value, "forced": bool(forced),
                                     "gated": evaluation_id in passed})


def _pipelines(conn: Any, facts: Facts, live: set[str]) -> None:
    from sqlalchemy import select

    from conveyor.store import pipeline_runs, run_tags, step_executions, step_outputs

    facts.pipeline_runs = sum(1 for (rid,) in conn.execute(select(pipeline_runs.c.run_id)) if rid in live)
    facts.sweeps = {v for rid, v in conn.execute(select(run_tags.c.run_id, run_tags.c.value)
                                                 .where(run_tags.c.key == "conveyor.sweep")) if rid in live}
    outputs: dict[str, list[str]] = defaultdict(list)
    for rid, name, digest in conn.execute(select(step_outputs.c.run_id, step_outputs.c.name, step_outputs.c.digest)):
        outputs[rid].append(f"{name}={digest}")
    runs_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    query = select(step_executions.c.run_id, step_executions.c.step, step_executions.c.cache_key).where(
        step_executions.c.cached.is_(False), step_executions.c.status == "FINISHED")
    for rid, step, key in conn.execute(query):
        if rid in live and rid in outputs:
            runs_of[(step, key)].append(rid)
    for (step, _key), rids in sorted(runs_of.items()):
        if len(rids) < 2:
            continue
        same = len({tuple(sorted(outputs[r])) for r in rids}) == 1
        (facts.reproduced if same else facts.not_reproduced).append(f"{step} ({len(rids)} executions)")


def _monitoring(conn: Any, facts: Facts) -> None:
    from sqlalchemy import select

    from conveyor.store import monitor_evaluations, retrain_triggers

    query = select(monitor_evaluations.c.metrics, monitor_evaluations.c.rules).where(
        monitor_evaluations.c.status.in_(("ok", "alert")))
    for metrics, rules in conn.execute(query):
        facts.monitor_evaluations += 1
        try:
            facts.monitor_metrics.update(k for k, v in json.loads(metrics).items() if v is not None)
            facts.monitor_rules.update(r["rule"] for r in json.loads(rules) if isinstance(r, dict) and "rule" in r)
        except (ValueError, AttributeError, TypeError):
            continue
    facts.triggers.update(reason for (reason,) in conn.execute(select(retrain_triggers.c.reason)))


def _serving(conn: Any, facts: Facts) -> None:
    from sqlalchemy import select

    from conveyor.store import serving_log_files

    spans: dict[str, dict[str, list[int]]] = defaultdict(dict)  # model → version → [first, last] served
    query = select(serving_log_files.c.kind, serving_log_files.c.model, serving_log_files.c.version,
                   serving_log_files.c.first_ts, serving_log_files.c.last_ts)
    for kind, model, version, first, last in conn.execute(query):
        if kind != "predictions":
            facts.feedback_models.add(model)
            continue
        facts.served_models.add(model)
        span = spans[model].setdefault(version, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
    # A canary serves two versions side by side: their serving periods overlap. A switch
    # (promotion, --follow) serves one after the other and does not count.
    for model, by_version in sorted(spans.items()):
        periods = sorted(by_version.values())
        if any(later[0] < earlier[1] for earlier, later in zip(periods, periods[1:])):
            facts.canaries.append(model)


def _manual(conn: Any, facts: Facts, live: set[str]) -> None:
    from sqlalchemy import select

    from conveyor.store import experiments, run_tags, runs

    query = (select(runs.c.id, runs.c.deleted_at).join(experiments, experiments.c.id == runs.c.experiment_id)
             .where(experiments.c.name == MANUAL_EXPERIMENT))
    records = dict(conn.execute(query).all())
    if not records:
        return
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for rid, key, value in conn.execute(select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value)
                                        .where(run_tags.c.run_id.in_(list(records)))):
        tags[rid][key] = value
    for rid, deleted_at in sorted(records.items()):
        t = tags.get(rid, {})
        if TAG_TEST not in t:
            continue
        if deleted_at is not None:
            facts.ignored.append(f"{t[TAG_TEST]}: record {rid[:8]} was deleted; not counted")
            continue
        ref = t.get(TAG_REF)
        if ref and ref.startswith("runs:/") and ref[6:].split("/")[0] not in live:
            facts.ignored.append(f"{t[TAG_TEST]}: evidence {ref} refers to a deleted or missing run; not counted")
            continue
        facts.manual[t[TAG_TEST]].append(ManualRecord(t[TAG_TEST], t.get(TAG_EVIDENCE, ""), rid, ref))


def _ci_files(root: Path, facts: Facts) -> None:
    candidates = [*sorted((root / ".github" / "workflows").glob("*.y*ml")), root / ".gitlab-ci.yml"]
    for path in candidates:
        if path.is_file():
            try:
                facts.ci_files[str(path.relative_to(root))] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
