"""Model cards (Mitchell et al., 2019) generated from facts the registry holds: the version,
its run, the data it read, the latest gate evaluation (metrics overall and per slice, every
check) and the audit trail; intended use and limitations come from ``[model_cards.<name>]``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from conveyor.errors import ConfigError, ConveyorError
from conveyor.registry._entities import ModelVersion
from conveyor.store import gate_evaluations


class CardSettings(BaseModel):
    """``[model_cards.<model name>]`` in conveyor.toml: what only people can say about a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intended_use: str = Field("not stated", description="Primary uses and users.")
    out_of_scope: str = Field("not stated", description="Uses the model is not meant for.")
    limitations: str = Field("not stated", description="Known limitations.")
    ethical_considerations: str = Field("not stated", description="Risks, sensitive data, harms.")
    caveats: str = Field("none recorded", description="Caveats and recommendations.")
    owners: list[str] = Field(default_factory=list, description="Who to contact.")


def card_settings(sections: Any, name: str) -> CardSettings:
    raw = (sections or {}).get(name, {}) if isinstance(sections, dict) else {}
    try:
        return CardSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"[model_cards.{name}] {key}: {first['msg']}", field=f"model_cards.{name}.{key}",
            value=raw.get(key) if isinstance(raw, dict) else raw,
            hint="known keys: " + ", ".join(CardSettings.model_fields),
        ) from exc


def latest_evaluation(registry: Any, name: str, version: int) -> dict[str, Any] | None:
    def read(conn: Any) -> Any:
        model = registry.repo.model_row(conn, name)
        return conn.execute(
            select(gate_evaluations)
            .where(gate_evaluations.c.model_id == model.id, gate_evaluations.c.version == version)
            .order_by(gate_evaluations.c.created_at.desc())
            .limit(1)
        ).first()

    row = registry.store.query(read, what=f"reading the latest gate evaluation of {name}/{version}")
    if row is None:
        return None
    evidence = json.loads(row.evidence)
    evidence.setdefault("id", row.id)
    evidence.setdefault("dataset", row.dataset)
    evidence.setdefault("n_rows", row.n_rows)
    return dict(evidence)


def model_card(uri: str, *, registry: Any = None, settings: Any = None) -> str:
    """The Markdown model card of a version: ``print(model_card("models:/churn/3"))``."""
    if registry is None:
        from conveyor.registry._fluent import get_registry

        registry = get_registry()
    if settings is None:
        from conveyor.settings import Settings

        settings = Settings.load()
    version = registry.get(uri if "/" in uri or "@" in uri else f"models:/{uri}/latest")
    from conveyor.registry._remote import RemoteRegistry

    if isinstance(registry, RemoteRegistry):  # remote mode: the server writes it from what it records
        return registry.card(version.name, version.version)
    config = card_settings(settings.section("model_cards"), version.name)
    run = registry.tracker.get_run(version.run_id) if version.run_id else None
    evaluation = latest_evaluation(registry, version.name, version.version)
    events = [e for e in registry.history(version.name) if e.version == version.version]
    lines = [f"# Model card: {version.name} version {version.version}", ""]
    lines += _details(version, run, registry.tracker)
    lines += _interface(registry, version)
    lines += ["## Intended use", "", config.intended_use, "", "**Out of scope:** " + config.out_of_scope, ""]
    lines += _factors(evaluation)
    lines += _metrics(evaluation, run)
    lines += _data(version, registry.tracker, evaluation)
    lines += _analyses(evaluation)
    lines += _gate(evaluation)
    lines += ["## Ethical considerations", "", config.ethical_considerations, ""]
    lines += ["## Caveats and recommendations", "", f"Limitations: {config.limitations}", "", config.caveats, ""]
    lines += ["## Lineage and history", ""]
    lines += [f"- registered from `{version.source}` (package `{version.digest}`)"]
    lines += [f"- read data: {', '.join(f'`{d}`' for d in version.data_versions) or 'not recorded'}"]
    for e in events:
        change = f"{e.alias or ''} {e.from_value or '∅'} → {e.to_value or '∅'}".strip()
        forced = " **(forced)**" if e.forced else ""
        lines.append(f"- {_when(e.at)} {e.kind} {change} by {e.user}{forced}: {e.reason}")
    if config.owners:
        lines += ["", "Owners: " + ", ".join(config.owners)]
    return "\n".join(lines).rstrip() + "\n"


#: what conveyor's pipeline runner records about a step, not what the model measured
_BOOKKEEPING = ("cache_hit", "attempts", "duration_s")


def _pipeline_run(tracker: Any, run: Any) -> Any:
    """The pipeline run a step run belongs to (``None`` for a run outside a pipeline)."""
    parent = (run.tags.get("conveyor.pipeline_run") or run.parent_id) if run is not None else None
    if not parent or "conveyor.step" not in run.tags:
        return None
    try:
        return tracker.get_run(parent)
    except ConveyorError:  # deleted since
        return None


def _details(version: ModelVersion, run: Any, tracker: Any = None) -> list[str]:
    rows = [
        ("URI", f"`{version.uri}`"),
        ("aliases", ", ".join(version.aliases) or "none"),
        ("status", version.status),
        ("registered", f"{_when(version.created_at)} by {version.user}"),
        ("run", f"`{version.run_id}`" + (f" ({run.experiment}/{run.name})" if run else "")),
        ("git commit", f"`{version.git_commit}`" if version.git_commit else "not recorded"),
        ("package size", f"{version.size:,} bytes"),
        ("description", version.description or "none"),
    ]
    if run is not None and run.params:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())[:12])
        rows.append(("parameters", shown))
    pipeline = _pipeline_run(tracker, run) if tracker is not None else None
    if pipeline is not None:
        params = ", ".join(f"{k}={v}" for k, v in sorted(pipeline.params.items())[:12]) or "none"
        step = run.tags.get("conveyor.step", run.name)
        cached = f", a cache hit of run `{run.tags['conveyor.cached_from']}`" if run.tags.get("conveyor.cached_from") else ""
        rows.append(("pipeline run", f"`{pipeline.id}` ({pipeline.tags.get('conveyor.pipeline', pipeline.name)}, "
                                     f"step `{step}`{cached}); pipeline parameters: {params}"))
    return ["## Model details", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]


def _interface(registry: Any, version: ModelVersion) -> list[str]:
    from conveyor.registry._signature import describe_outputs, package_signature

    shown = describe_outputs(package_signature(registry, version))
    if not shown:
        return ["## Inputs and outputs", "", "No signature recorded: predict is not checked.", ""]
    return ["## Inputs and outputs", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in shown.items()], ""]


def _factors(evaluation: dict[str, Any] | None) -> list[str]:
    slices = (evaluation or {}).get("slices") or []
    columns = sorted({s["column"] for s in slices})
    text = ", ".join(f"`{c}`" for c in columns) if columns else "no slices were evaluated"
    return ["## Factors", "", f"Groups evaluated separately: {text}.", ""]


def _metrics(evaluation: dict[str, Any] | None, run: Any) -> list[str]:
    out = ["## Metrics", ""]
    if evaluation:
        champ = evaluation.get("champion_metrics") or {}
        out += ["| metric | this version | champion |", "|---|---|---|"]
        for key, value in sorted((evaluation.get("metrics") or {}).items()):
            out.append(f"| {key} | {_num(value)} | {_num(champ.get(key))} |")
        out.append("")
    if run is not None and run.metrics:
        pipeline_step = "conveyor.step" in run.tags
        shown = {k: v for k, v in run.metrics.items() if not (pipeline_step and k in _BOOKKEEPING)}
        label = "Training run metrics"
        if pipeline_step and run.tags.get("conveyor.evaluation_run"):
            label = (f"Training run metrics (with the evaluation of pipeline step run "
                     f"`{run.tags['conveyor.evaluation_run']}`)")
        if shown:
            out += [f"{label}: " + ", ".join(f"{k}={_num(v)}" for k, v in sorted(shown.items())), ""]
    if len(out) == 2:
        out += ["No evaluation recorded yet (`conveyor ci check`).", ""]
    return out


def _training_schema(tracker: Any, ref: str) -> list[str]:
    """Columns of a training data set version (empty for files and folders)."""
    from conveyor.data import schema_of

    try:
        schema = schema_of(ref, tracker=tracker)
    except ConveyorError:  # not a table, or a version since removed
        return []
    return [f"`{c.name}` {c.type}{'' if c.nullable else ' (not null)'}" for c in schema.columns]


def _data(version: ModelVersion, tracker: Any, evaluation: dict[str, Any] | None) -> list[str]:
    out = ["## Training and evaluation data", ""]
    out.append(f"- training data: {', '.join(f'`{d}`' for d in version.data_versions) or 'not recorded'}")
    for ref in version.data_versions:
        columns = _training_schema(tracker, ref)
        if columns:
            out.append(f"  - `{ref}` schema: " + ", ".join(columns))
    if evaluation:
        out.append(f"- evaluation data: `{evaluation.get('dataset') or 'a DataFrame'}`, {evaluation.get('n_rows')} rows")
        schema = evaluation.get("schema") or []
        if schema:
            out.append("- schema: " + ", ".join(f"`{c['name']}` {c['dtype']}" for c in schema))
    return out + [""]


def _analyses(evaluation: dict[str, Any] | None) -> list[str]:
    slices = (evaluation or {}).get("slices") or []
    if not slices:
        return []
    out = ["## Quantitative analyses (per slice, worst first)", "", "| slice | rows | metric | value |", "|---|---|---|---|"]
    for s in slices[:15]:
        out.append(f"| {s['column']} = {s['value']} | {s['n']} | {s['metric']} | {_num(s['score'])} |")
    return out + [""]


def _gate(evaluation: dict[str, Any] | None) -> list[str]:
    if not evaluation:
        return []
    verdict = "PASSED" if evaluation.get("passed") else "FAILED"
    out = [f"## Gate `{evaluation.get('gate')}`: {verdict}", "", "| check | result | summary |", "|---|---|---|"]
    for check in evaluation.get("checks", []):
        result = {True: "pass", False: "FAIL", None: "skipped"}[check["passed"]]
        out.append(f"| {check['name']} | {result} | {check['summary']} |")
    return out + [""]


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _when(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
