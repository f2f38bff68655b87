"""Quickstart stage: register the best tracked candidate, gate it against the champion,
promote or veto with the evidence shown, and print the champion's model card.

Needs from earlier stages (``story.facts``): ``runs`` (name, run id, metrics) and ``data``
(X_train, X_test, y_train, y_test) from the tracking stage. A run whose ``model`` artifact
is not yet a conveyor model package gets one logged in a fresh run with the same settings.
"""

from __future__ import annotations

from typing import Any

from rich.markdown import Markdown
from rich.table import Table

from conveyor.quickstart._run import Story

MODEL = "breast-cancer"
EXPERIMENT = "quickstart"


def _gate() -> Any:
    from conveyor.gates import define_gate

    return define_gate(
        "quickstart",
        model=MODEL,
        label="target",
        metrics=["f1 >= 0.9", "accuracy >= 0.9", "f1 >= champion.f1 - 0.01"],
        compare={"metric": "f1", "margin": 0.02},
        slices={"bins": {"mean radius": 3}, "thresholds": ["accuracy >= 0.8"], "min_size": 20},
        baseline={"kind": "dummy", "margin": 0.2},
        operational={"max_size_mb": 50, "max_p95_latency_ms": 250, "latency_samples": 20},
        schema_file="schemas/breast-cancer.toml",  # written by the data stage: the team's rules (Data 4)
        privacy={"allow": []},  # no column may hold personal data (Data 5)
        staleness={"versions": 3},  # older versions on today's data (Model 4)
        trace=True,  # one row stepped through the package (Infra 5)
    )


def _package(story: Story, name: str, run_id: str, model: Any = None) -> str:
    """``runs:/…/model`` of a conveyor package for candidate ``name``."""
    import conveyor
    import conveyor.models
    from conveyor.quickstart._track import _candidates

    artifacts = {a.path: a for a in story.tracker.list_artifacts(run_id)}
    found = artifacts.get("model")
    if model is None and found is not None and found.is_dir:
        return f"runs:/{run_id}/model"
    X_train, _, y_train, _ = story.facts["data"]
    if model is None:
        model = dict(_candidates())[name].fit(X_train, y_train)
    with conveyor.start_run(experiment=EXPERIMENT, name=f"{name} (package)", tags={"stage": "gate"}) as run:
        conveyor.log_params({"candidate": name})
        conveyor.models.log(model, "model", input_example=X_train.head(3))
    return f"runs:/{run.id}/model"


def _show(story: Story, title: str, evaluation: Any) -> None:
    table = Table(title=title, show_lines=False)
    for column in ("check", "result", "evidence"):
        table.add_column(column, overflow="fold")
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]skipped[/]"}
    for check in evaluation.checks:
        table.add_row(check.name, marks[check.passed], check.summary)
    story.console.print(table)


def _decide(story: Story, registry: Any, spec: Any, source: str, label: str) -> Any:
    from conveyor.errors import Conflict
    from conveyor.gates import evaluate, promote

    X_test, y_test = story.facts["data"][1], story.facts["data"][3]
    holdout = X_test.assign(target=y_test.to_numpy())
    version = registry.register(source, MODEL, description=label)
    result = evaluate(spec, version.uri, holdout, registry=registry)
    against = f"champion v{result.champion_version}" if result.champion_version else "no champion yet"
    _show(story, f"gate '{spec.name}' for {version.uri} ({label}) vs {against}", result)
    try:
        event = promote(MODEL, version.version, registry=registry)
        story.console.print(f"[green]promoted[/] {version.uri} to champion ({event.from_value or '∅'} → {event.to_value})")
    except Conflict:
        failed = ", ".join(check.name for check in result.failures) or "no passing evaluation"
        story.console.print(f"[bold red]vetoed[/] {version.uri}: the gate failed on {failed} (evidence above)")
    return result


def _challenger(story: Story, registry: Any, spec: Any, source: str) -> None:
    """The pipeline's candidate, gated against the champion; when it passes it becomes
    ``@challenger`` (a gated promotion to that alias), which the serving stage canaries."""
    from conveyor.errors import Conflict
    from conveyor.gates import evaluate, promote

    X_test, y_test = story.facts["data"][1], story.facts["data"][3]
    version = registry.register(source, MODEL, description="the training pipeline's candidate")
    result = evaluate(spec, version.uri, X_test.assign(target=y_test.to_numpy()), registry=registry)
    try:
        promote(MODEL, version.version, alias="challenger", registry=registry)
    except Conflict:
        story.console.print(f"the pipeline's candidate {version.uri} failed the gate "
                            f"({', '.join(c.name for c in result.failures)}): no challenger", highlight=False)
        return
    story.console.print(f"the pipeline's candidate {version.uri} passed the gate ({len(result.checks)} checks) → "
                        f"{MODEL}@challenger, canaried by the serving stage", highlight=False)
    story.facts["challenger"] = f"{MODEL}@challenger"


def stage(story: Story) -> None:
    from sklearn.linear_model import LogisticRegression

    from conveyor.errors import NotFound
    from conveyor.registry import Registry, model_card

    registry = Registry(story.tracker)
    spec = _gate()
    ranked = sorted(story.facts["runs"], key=lambda r: r[2]["f1"], reverse=True)
    best_name, best_run, _ = ranked[0]
    story.console.print(
        f"gate [bold]{spec.name}[/]: {', '.join(spec.metrics)}; paired bootstrap + McNemar vs the champion; "
        "slices by 'mean radius'; beat a dummy by 0.2; p95 latency ≤ 250 ms"
    )
    _decide(story, registry, spec, _package(story, best_name, best_run), f"best tracked candidate {best_name}")

    # A deliberately weaker challenger (two features only) shows a veto with its evidence.
    X_train, _, y_train, _ = story.facts["data"]
    weak = LogisticRegression(max_iter=500).fit(
        X_train.assign(**{c: 0.0 for c in X_train.columns if c not in ("mean texture", "mean symmetry")}), y_train
    )
    _decide(story, registry, spec, _package(story, "weak", best_run, weak), "a weaker challenger")

    if story.facts.get("pipeline_candidate"):
        _challenger(story, registry, spec, str(story.facts["pipeline_candidate"]))

    try:
        champion = registry.get(f"models:/{MODEL}@champion")
    except NotFound:
        story.console.print("[yellow]no version passed the gate: there is no champion yet[/]")
        return
    story.console.rule(f"model card of {champion.uri} (`conveyor models card {MODEL}@champion`)")
    story.console.print(Markdown(model_card(champion.uri, registry=registry, settings=story.settings)))
    story.facts["champion"] = champion.uri
