"""Quickstart stage: training as a cached pipeline (load → validate → split → train →
evaluate) on a versioned data set, run twice to show the second run fully cached, a third
time without the cache to show byte-identical outputs (reproducible training), and swept
over ``C``.

Needs from earlier stages: nothing (it versions the breast-cancer table itself as the data
set ``breast-cancer`` when no earlier stage did). Leaves in ``story.facts``:
``pipeline_runs`` (the two run ids), ``pipeline_model_run`` (the train step's run),
``pipeline_candidate`` (the ``runs:/…/model`` package the pipeline declares as its candidate,
what ``conveyor ci check --pipeline`` and retraining register) and ``pipeline_metrics``.

The steps live at module level here so worker processes can import them.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from conveyor.pipelines import dataset, pipeline, step, train_candidate
from conveyor.quickstart._run import Story

DATASET = "breast-cancer"
EXPERIMENT = "quickstart-pipeline"


@step
def validate(frame: Any) -> Any:
    """Stop the pipeline on a broken table: a missing target, empty rows or nulls."""
    if "target" not in frame.columns or frame.empty or frame.isna().any().any():
        raise ValueError("the breast-cancer table needs a 'target' column and no missing values")
    print(f"validated {len(frame)} rows × {frame.shape[1]} columns")
    return frame


@step(outputs=("train", "test"))
def split(frame: Any, test_size: float = 0.25, seed: int = 42) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame["target"])
    return train, test


@step
def train(frame: Any, C: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
    return model.fit(frame.drop(columns="target"), frame["target"])


@step(metrics=True)
def evaluate(model: Any, frame: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    features, target = frame.drop(columns="target"), frame["target"]
    predicted = model.predict(features)
    return {
        "accuracy": float(accuracy_score(target, predicted)),
        "f1": float(f1_score(target, predicted)),
        "roc_auc": float(roc_auc_score(target, model.predict_proba(features)[:, 1])),
    }


@pipeline(name="quickstart-training", candidate="train", evaluation="evaluate")
def training(C: float = 1.0, ref: str = DATASET) -> None:
    train_rows, test_rows = split(validate(dataset(ref)))
    evaluate(train(train_rows, C=C), test_rows)


def _ensure_dataset(story: Story) -> str:
    import conveyor.data
    from sklearn.datasets import load_breast_cancer

    existing = story.facts.get("dataset")  # set by the data stage when it ran first
    if existing:
        return str(existing)
    frame = load_breast_cancer(as_frame=True).frame
    version = conveyor.data.add(frame, name=DATASET, tracker=story.tracker)
    story.console.print(
        f"data set [bold]{version.ref}[/] ({len(frame)} rows) {'stored' if version.created else 'unchanged'}"
    )
    return version.ref


def stage(story: Story) -> None:
    ref = _ensure_dataset(story).removeprefix("data:/")
    marks = {"cached": "[cyan]↺ cached[/]", "finished": "[green]✓ ran[/]", "failed": "[red]✗ failed[/]",
             "skipped": "[yellow]– skipped[/]"}
    results = []
    for attempt in ("first run", "second run (nothing changed)"):
        story.console.print(f"[bold]{attempt}[/]: load → validate → split → train → evaluate")

        def show(node: str, status: str, detail: str) -> None:
            if status in marks:
                story.console.print(f"   {marks[status]} {node} [dim]{detail}[/]", highlight=False)

        # the one contract from pipeline to candidate: the same call `ci check --pipeline` and
        # retraining make (a failed step raises PipelineFailed naming it)
        result = train_candidate(training, params={"C": 1.0, "ref": ref}, tracker=story.tracker,
                                 experiment=EXPERIMENT, on_event=show)
        results.append(result)
    first, second = results
    table = Table(title="the same pipeline twice")
    for column in ("run", "steps run", "steps cached", "seconds"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for label, result in (("first", first), ("second", second)):
        ran = sum(1 for s in result.steps.values() if s.kind == "step" and not s.cached)
        table.add_row(f"{label} {result.run_id[:8]}", str(ran), str(len(result.cached)), f"{result.duration_s:.2f}")
    story.console.print(table)
    metrics = story.tracker.get_run(second.run_id).metrics
    story.console.print(
        f"second run: every step came from the cache · f1={metrics.get('f1', float('nan')):.4f} · "
        f"`conveyor pipeline runs` lists both"
    )
    story.console.print(
        f"candidate (declared by @pipeline(candidate=\"train\")): [bold]{second.candidate}[/] · evaluated by step "
        f"evaluate: accuracy={second.evaluation.get('accuracy', float('nan')):.4f} — "
        "`conveyor ci check --pipeline … -p C=0.5` gates it", highlight=False,
    )
    _reproduce_and_sweep(story, ref, first)
    story.facts["pipeline_runs"] = (first.run_id, second.run_id)
    story.facts["pipeline_model_run"] = first.steps["train"].run_id
    story.facts["pipeline_candidate"] = second.candidate
    story.facts["pipeline_metrics"] = dict(metrics)


def _reproduce_and_sweep(story: Story, ref: str, first: Any) -> None:
    """Infra 1: the same pipeline once more *without* the cache — identical step outputs
    (digests) prove training is reproducible. Model 3: a small sweep over C, ranked by f1."""
    from conveyor.pipelines import sweep

    again = train_candidate(training, params={"C": 1.0, "ref": ref}, tracker=story.tracker,
                            experiment=EXPERIMENT, cache=False)
    def digests(result: Any, name: str) -> dict[str, Any]:
        return {k: dict(v).get("digest") for k, v in result.steps[name].outputs.items()}

    same = [name for name in ("validate", "split", "train", "evaluate")
            if digests(first, name) and digests(first, name) == digests(again, name)]
    story.console.print(
        f"third run without the cache ({again.run_id[:8]}): {len(same)} of 4 steps gave byte-identical outputs "
        f"to the first run ({', '.join(same) or 'none'}) — training is reproducible", highlight=False)
    result = sweep(training, {"C": [0.1, 1.0], "ref": [ref]}, metric="f1", maximize=True, tracker=story.tracker)
    params, run, f1 = result.best
    story.console.print(f"sweep over C ∈ {{0.1, 1.0}} (`conveyor pipeline sweep`): best C={params['C']} "
                        f"f1={f1:.4f} (run {run.run_id[:8]}; {len(result.points)} points, the cached one reused)", highlight=False)
