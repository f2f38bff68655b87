"""Quickstart stage: train a few scikit-learn models on bundled data and track them."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from conveyor.quickstart._run import Story

EXPERIMENT = "quickstart"


def _candidates() -> list[tuple[str, Any]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("logreg-C0.1", make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))),
        ("logreg-C1", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))),
        ("random-forest", RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0, n_jobs=2)),
        ("gradient-boosting", GradientBoostingClassifier(n_estimators=100, random_state=0)),
    ]


def stage(story: Story) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import conveyor
    import conveyor.models

    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=42, stratify=data.target
    )
    story.console.print(
        f"data: scikit-learn's breast-cancer set, {len(X_train)} training / {len(X_test)} test rows, "
        f"{X_train.shape[1]} features"
    )
    results = []
    for name, model in _candidates():
        with conveyor.start_run(experiment=EXPERIMENT, name=name, tags={"stage": "quickstart"}) as run:
            params = {k: v for k, v in model.get_params(deep=True).items() if isinstance(v, (int, float, str, bool))}
            conveyor.log_params({"model": type(model).__name__, **params})
            model.fit(X_train, y_train)
            predicted = model.predict(X_test)
            scores = model.predict_proba(X_test)[:, 1]
            metrics = {
                "accuracy": accuracy_score(y_test, predicted),
                "f1": f1_score(y_test, predicted),
                "roc_auc": roc_auc_score(y_test, scores),
            }
            conveyor.log_metrics(metrics)
            # a model package: skops inside, signature inferred from these rows and enforced
            conveyor.models.log(model, "model", input_example=X_train.head(5))
        results.append((name, run.id, metrics))
        story.console.print(f"  tracked [bold]{name}[/] as run {run.id[:8]}  f1={metrics['f1']:.4f}")
    story.facts["runs"] = results
    story.facts["data"] = (X_train, X_test, y_train, y_test)

    best = conveyor.search_runs(EXPERIMENT, order_by=["metrics.f1 desc", "metrics.roc_auc desc"], max_results=10)
    table = Table(title="runs, best f1 first (conveyor.search_runs)")
    for column in ("run", "name", "accuracy", "f1", "roc_auc"):
        table.add_column(column, justify="right" if column in ("accuracy", "f1", "roc_auc") else "left")
    for _, row in best.iterrows():
        table.add_row(
            row["run_id"][:8], row["name"],
            f"{row['metrics.accuracy']:.4f}", f"{row['metrics.f1']:.4f}", f"{row['metrics.roc_auc']:.4f}",
        )
    story.console.print(table)
    story.facts["best_run"] = best.iloc[0]["run_id"]
