"""The automated checks `conveyor score` reads for Data 2, Model 7 and Monitor 3–6: the gate's
permutation-importance feature check and protected slices, and the monitor's skew,
non-finite, staleness and latency-regression metrics — each on a logistic regression
pipeline and a random forest, on real data (scikit-learn's breast-cancer set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conveyor.cli import app

KINDS = ("logreg", "forest")


def _data() -> Any:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :6].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["noise"] = np.random.default_rng(0).normal(size=len(frame))  # carries no signal
    frame["site"] = np.where(np.random.default_rng(1).random(len(frame)) < 0.5, "north", "south")
    frame["label"] = y.to_numpy()
    return pd.DataFrame(frame)


def _fit(kind: str, train: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = train.drop(columns=["label", "site"]), train["label"]
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return RandomForestClassifier(n_estimators=60, random_state=0).fit(X, y)


def _register(kind: str, train: Any) -> tuple[Any, int]:
    import conveyor
    import conveyor.models
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    model = _fit(kind, train)
    with conveyor.start_run(experiment="checks", name=kind) as run:
        conveyor.models.log(model, "model", input_example=train.drop(columns=["label", "site"]).head(3))
    tracker = get_tracker()
    tracker.flush()
    version = Registry(tracker).register(f"runs:/{run.id}/model", kind).version
    return model, version


def _score() -> dict[str, dict[str, Any]]:
    from conveyor.tracking import set_tracker

    set_tracker(None)
    result = CliRunner().invoke(app, ["score", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {t["id"]: t for t in json.loads(result.output)["tests"]}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_feature_check_fails_a_noise_column_and_protected_slices_are_recorded(project: Path, kind: str) -> None:
    from conveyor.gates import define_gate, evaluate
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    _, version = _register(kind, frame.iloc[:380])
    gate = define_gate("features", model=kind, label="label", metrics=["accuracy >= 0.8"], compare=None,
                       features={"min_importance": 0.0, "repeats": 10},
                       slices={"protected": ["site"], "thresholds": ["accuracy >= 0.8"]})
    result = evaluate(gate, f"models:/{kind}/{version}", frame.iloc[380:], registry=Registry(get_tracker()))
    features = next(c for c in result.checks if c.kind == "features")
    importance = features.evidence["importance"]
    assert set(importance) == {c for c in frame.columns if c not in ("label", "site")}  # not the slicing column
    assert features.passed is False and "noise" in features.evidence["useless"]
    lower = features.evidence["lower"]
    assert lower["noise"] <= 0 < max(lower.values())  # the noise column is not shown to help
    assert all(lower[c] > 0 for c in importance if c not in features.evidence["useless"])
    assert "mean_texture" not in features.evidence["useless"]  # the strongest real feature passes
    protected = next(c for c in result.checks if c.kind == "slices")
    assert protected.name == "slices (protected): site" and protected.evidence["protected"] is True
    assert protected.passed is True

    tests = _score()
    assert tests["Data 2"]["status"] == "automated", tests["Data 2"]
    assert "1 gate evaluation(s) ran the permutation importance of every feature" in tests["Data 2"]["evidence"]
    assert tests["Model 7"]["status"] == "automated", tests["Model 7"]


def test_feature_check_passes_a_regression_whose_features_all_carry_signal(project: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from conveyor.gates import define_gate, evaluate

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X[["bmi", "s5"]]
    model = Ridge(alpha=0.1).fit(X.iloc[:300], y.iloc[:300])
    gate = define_gate("two", task="regression", label="target", compare=None, data_checks=False,
                       features={"min_importance": 0.0})
    result = evaluate(gate, model, X.iloc[300:].assign(target=y.iloc[300:]), champion=None, save=False)
    check = next(c for c in result.checks if c.kind == "features")
    assert check.evidence["metric"] == "rmse" and check.passed is True and check.evidence["useless"] == []
    assert all(v > 0 for v in check.evidence["lower"].values())


def test_an_unknown_protected_column_is_named(project: Path) -> None:
    from conveyor.errors import InvalidInput
    from conveyor.gates import define_gate, evaluate

    frame = _data()
    model = _fit("logreg", frame.iloc[:380])
    gate = define_gate("bad", label="label", compare=None, data_checks=False,
                       slices={"protected": ["gender"], "thresholds": ["accuracy >= 0.5"]})
    with pytest.raises(InvalidInput) as caught:
        evaluate(gate, model, frame.iloc[380:].drop(columns=["site"]), champion=None, save=False)
    assert caught.value.field == "gates.bad.slices.protected" and "gender" in caught.value.message


def _window(model: Any, rows: Any, version: int, latency: float) -> Any:
    features = rows.drop(columns=["label", "site"])
    return features.assign(prediction=model.predict(features), version=str(version), label=rows["label"],
                           latency_ms=np.full(len(rows), latency), request_id="r", row=np.arange(len(rows)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_monitor_measures_skew_nonfinite_age_and_latency_regression(project: Path, kind: str) -> None:
    import conveyor.data
    from conveyor.gates import promote
    from conveyor.monitoring import MonitorConfig, Monitoring
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    model, version = _register(kind, frame.iloc[:380])
    promote(kind, version, force=True, registry=Registry(get_tracker()), reason="test")
    reference = conveyor.data.add(frame.iloc[:380].drop(columns=["site"]), name=f"ref-{kind}").ref
    rules = ["skew_mismatch_rate > 0", "nonfinite_prediction_rate > 0", "model_age_days > 30",
             "p95_latency_ratio > 1.5", "p95_latency_ms > 1000"]
    config = MonitorConfig(name=kind, model=kind, reference=reference, target="label", rules=rules,
                           skew_sample=150)
    monitoring = Monitoring(get_tracker())
    served = frame.iloc[380:]

    clean = monitoring.evaluate(config, current=_window(model, served, version, 10.0))
    assert clean.metrics["skew_rows"] == 150 and clean.metrics["skew_mismatch_rate"] == 0.0
    assert clean.metrics["nonfinite_prediction_rate"] == 0.0
    assert 0 <= clean.metrics["model_age_days"] < 1
    assert clean.metrics["p95_latency_ratio"] is None  # nothing to compare with yet
    assert clean.status == "ok", [r for r in clean.rules if r.fired]

    # the server answered differently for a fifth of the rows (skew), some answers are NaN
    # (numerical instability), and it got three times slower (a computing-performance regression)
    skewed = _window(model, served, version, 30.0)
    flipped = np.arange(len(skewed)) % 5 == 0
    skewed["prediction"] = skewed["prediction"].astype(float)
    skewed.loc[flipped, "prediction"] = 1 - skewed.loc[flipped, "prediction"]
    skewed.loc[skewed.index[:4], "prediction"] = np.nan
    monitoring_all = Monitoring(get_tracker())
    bad = monitoring_all.evaluate(config.model_copy(update={"skew_sample": len(skewed)}), current=skewed)
    expected = (flipped | (np.arange(len(skewed)) < 4)).mean()
    assert bad.metrics["skew_mismatch_rate"] == pytest.approx(expected)
    assert bad.metrics["nonfinite_prediction_rate"] == pytest.approx(4 / len(skewed))
    assert bad.metrics["p95_latency_ratio"] == pytest.approx(3.0)
    fired = {r.rule for r in bad.rules if r.fired}
    assert fired == {"skew_mismatch_rate > 0", "nonfinite_prediction_rate > 0", "p95_latency_ratio > 1.5"}

    tests = _score()
    for test in ("Monitor 3", "Monitor 4", "Monitor 5", "Monitor 6"):
        assert tests[test]["status"] == "automated", tests[test]
    assert "staleness rules: model_age_days > 30" in tests["Monitor 4"]["evidence"]
    assert "p95_latency_ratio > 1.5" in tests["Monitor 6"]["evidence"][0]


def test_skew_is_empty_when_the_served_version_cannot_be_loaded(project: Path) -> None:
    from conveyor.monitoring._production import SkewCheck
    from conveyor.tracking import get_tracker

    frame = _data()
    model = _fit("logreg", frame.iloc[:380])
    window = _window(model, frame.iloc[380:], 7, 1.0)
    measured = SkewCheck(get_tracker()).measure(window, "nobody", prediction="prediction",
                                                features=list(window.columns), sample=50, tolerance=1e-6)
    assert measured == {"skew_rows": 0.0, "skew_mismatch_rate": None}


def test_nonfinite_rate_counts_nan_inf_and_missing() -> None:
    import pandas as pd

    from conveyor.monitoring._production import latency_ratio, model_age_days, nonfinite_rate

    frame = pd.DataFrame({"prediction": [1.0, np.inf, -np.inf, np.nan, 2.0]})
    assert nonfinite_rate(frame, "prediction") == pytest.approx(3 / 5)
    labels = pd.DataFrame({"prediction": ["a", None, "b", "c"]})
    assert nonfinite_rate(labels, "prediction") == pytest.approx(1 / 4)
    assert nonfinite_rate(frame, "absent") is None
    assert model_age_days(1_000, 1_000 + 86_400_000 * 3) == pytest.approx(3.0)
    assert latency_ratio(30.0, 10.0) == 3.0 and latency_ratio(30.0, None) is None and latency_ratio(1.0, 0) is None


def test_rule_grammar_knows_the_new_metrics() -> None:
    from conveyor.monitoring._rules import METRICS, parse_rule

    for name in ("skew_mismatch_rate", "nonfinite_prediction_rate", "model_age_days", "p95_latency_ratio"):
        assert name in METRICS
    rule = parse_rule("model_age_days > 30")
    assert rule.evaluate({"model_age_days": 31.0}).fired
    assert not rule.evaluate({"model_age_days": 2.0}).fired


def test_every_rule_metric_is_documented() -> None:
    """The site's rule page is generated from METRICS (tools/docs_hooks.py), so every metric,
    the new ones included, is documented with its meaning."""
    import sys

    from conveyor.monitoring._rules import METRICS

    root = Path(__file__).resolve().parents[2]
    assert "<!-- generated: rules -->" in (root / "docs" / "reference" / "rules.md").read_text(encoding="utf-8")
    sys.path.insert(0, str(root / "tools"))
    try:
        from docs_hooks import rules_reference
    finally:
        sys.path.remove(str(root / "tools"))
    text = rules_reference()
    for name, meaning in METRICS.items():
        assert f"| `{name}` | {meaning} |" in text, name


def _people(frame: Any) -> Any:
    """The breast-cancer rows with a patient e-mail and card number, as a careless export has them."""
    rng = np.random.default_rng(3)
    digits = [f"4{rng.integers(10**13, 10**14)}" for _ in range(len(frame))]

    def luhn(body: str) -> str:
        total = 0
        for i, ch in enumerate(reversed(body)):
            d = int(ch) * (2 if i % 2 == 0 else 1)
            total += d - 9 if d > 9 else d
        return body + str((10 - total % 10) % 10)

    return frame.assign(contact=[f"patient{i}@clinic.example" for i in range(len(frame))],
                        card=[luhn(d) for d in digits])


@pytest.mark.parametrize("kind", KINDS)
def test_gate_validates_the_kept_schema_and_scans_for_personal_data(project: Path, kind: str) -> None:
    """Data 4 and Data 5 as gate checks, on both kinds of model: a schema file kept in the
    project (types, ranges) and a scan for personal data outside the allowed columns."""
    import conveyor.data
    from conveyor.data import Schema
    from conveyor.errors import NotFound, UnsafePath
    from conveyor.gates import define_gate, evaluate
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    _, version = _register(kind, frame.iloc[:380])
    ref = conveyor.data.add(frame, name=f"all-{kind}").ref  # the ranges the team knows: the whole population
    schema = conveyor.data.schema_of(ref)
    (project / "schemas").mkdir()
    schema.write(project / "schemas" / "train.toml")
    gate = define_gate("rules", model=kind, label="label", compare=None, schema_file="schemas/train.toml",
                       privacy={"allow": ["contact"]})
    uri = f"models:/{kind}/{version}"
    registry = Registry(get_tracker())
    held = frame.iloc[380:]
    ok = evaluate(gate, uri, held, registry=registry)
    data = next(c for c in ok.checks if c.kind == "data")
    assert data.passed, data.summary
    privacy = next(c for c in ok.checks if c.kind == "privacy")
    assert data.passed and data.evidence["schema_file"] == "schemas/train.toml", data.summary
    assert privacy.passed and privacy.evidence["personal"] == {}, privacy.summary

    # a unit change upstream breaks the kept type rule; an export leaks e-mails and card numbers
    broken = held.assign(mean_radius=held["mean_radius"].astype(str) + " in")
    bad = evaluate(gate, uri, broken, registry=registry, save=False)
    check = next(c for c in bad.checks if c.kind == "data")
    assert check.passed is False and "schema schemas/train.toml" in check.summary
    leaked = evaluate(gate, uri, _people(held), registry=registry, save=False)
    privacy = next(c for c in leaked.checks if c.kind == "privacy")
    assert privacy.passed is False and privacy.evidence["flagged"] == ["card"]
    assert privacy.evidence["personal"]["contact"] == [f"email ({len(held)} of {len(held)} values)"]
    assert "@" not in str(privacy.evidence) and "card: payment_card" in privacy.summary  # no value recorded

    with pytest.raises(UnsafePath):
        evaluate(define_gate("out", label="label", compare=None, schema_file="../elsewhere.toml"), uri, held,
                 registry=registry, save=False)
    with pytest.raises(NotFound, match="conveyor data schema NAME -o schemas/none.toml"):
        evaluate(define_gate("none", label="label", compare=None, schema_file="schemas/none.toml"), uri, held,
                 registry=registry, save=False)
    assert isinstance(Schema.read(project / "schemas" / "train.toml"), Schema)

    tests = _score()
    for test in ("Data 4", "Data 5"):
        assert tests[test]["status"] == "automated", tests[test]
    assert "kept schema file" in tests["Data 4"]["evidence"][0]
    assert "personal data" in tests["Data 5"]["evidence"][0]


def test_personal_data_patterns() -> None:
    from conveyor.gates._privacy import kind_of

    assert kind_of("ana.lopez+x@mail.example.org") == "email"
    assert kind_of("4539 1488 0343 6467") == "payment_card"  # Luhn-valid
    assert kind_of("4539 1488 0343 6468") != "payment_card"
    assert kind_of("123-45-6789") == "ssn"
    assert kind_of("DE89370400440532013000") == "iban"
    assert kind_of("192.168.1.20") == "ipv4"
    assert kind_of("+1 (415) 555-0100") == "phone"
    assert kind_of("north") is None and kind_of("12.5") is None


@pytest.mark.parametrize("kind", KINDS)
def test_staleness_check_scores_older_versions_on_todays_data(project: Path, kind: str) -> None:
    """Model 4: versions trained on less (older) data, registered 60 and 20 days before the
    candidate, are scored on the candidate's evaluation rows; the loss per day of age decides
    whether a 30-day retraining cadence keeps the loss within max_loss."""
    from sqlalchemy import update

    from conveyor.gates import define_gate, evaluate
    from conveyor.registry import Registry
    from conveyor.store import model_versions, registered_models
    from conveyor.tracking import get_tracker

    frame = _data()
    held = frame.iloc[380:]
    # older versions saw fewer and noisier rows
    old = frame.iloc[:380].sample(n=60, random_state=0)
    old = old.assign(label=np.where(np.random.default_rng(0).random(len(old)) < 0.3, 1 - old["label"], old["label"]))
    _register(kind, old)
    _register(kind, frame.iloc[:150])
    _, version = _register(kind, frame.iloc[:380])
    tracker = get_tracker()
    registry = Registry(tracker)
    now = registry.get(f"models:/{kind}/{version}").created_at
    with tracker.store.write() as conn:
        model_id = conn.execute(registered_models.select().where(registered_models.c.name == kind)).first().id
        for number, days in ((1, 60), (2, 20)):
            conn.execute(update(model_versions).where(model_versions.c.model_id == model_id,
                                                      model_versions.c.version == number)
                         .values(created_at=now - days * 86_400_000))
    uri = f"models:/{kind}/{version}"
    relaxed = define_gate("stale", model=kind, label="label", compare=None, data_checks=False,
                          staleness={"versions": 3, "metric": "accuracy"})
    result = evaluate(relaxed, uri, held, registry=registry)
    check = next(c for c in result.checks if c.kind == "staleness")
    assert check.passed is True, check.summary
    rows = {r["version"]: r for r in check.evidence["versions"]}
    assert set(rows) == {1, 2} and rows[1]["age_days"] == pytest.approx(60) and rows[2]["age_days"] == pytest.approx(20)
    assert rows[1]["loss"] > 0  # the oldest, noisiest version does worse on today's rows
    assert rows[1]["loss"] == pytest.approx(result.metrics["accuracy"] - rows[1]["accuracy"])
    assert check.evidence["loss_per_day"] > 0
    strict = define_gate("cadence", model=kind, label="label", compare=None, data_checks=False,
                         staleness={"metric": "roc_auc", "max_age_days": 30, "max_loss": 0.0})
    judged = next(c for c in evaluate(strict, uri, held, registry=registry, save=False).checks
                  if c.kind == "staleness")
    assert judged.passed is False and "at 30 days" in judged.summary, judged.summary
    first = define_gate("first", model=kind, label="label", compare=None, data_checks=False, staleness={})
    skipped = next(c for c in evaluate(first, f"models:/{kind}/1", held, registry=registry, save=False).checks
                   if c.kind == "staleness")
    assert skipped.passed is None and "no older version" in skipped.summary

    tests = _score()
    assert tests["Model 4"]["status"] == "automated", tests["Model 4"]
    assert "older versions on today's data" in tests["Model 4"]["evidence"][0]


@pytest.mark.parametrize("kind", KINDS)
def test_trace_steps_one_row_through_the_package(project: Path, kind: str) -> None:
    """Infra 5: the gate steps the first evaluation row through the loaded package (the
    scaler, then the logistic regression; or the forest in one step) and it matches predict."""
    from conveyor.gates import define_gate, evaluate
    from conveyor.gates._trace import trace_check
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    model, version = _register(kind, frame.iloc[:380])
    gate = define_gate("trace", model=kind, label="label", compare=None, trace=True)
    result = evaluate(gate, f"models:/{kind}/{version}", frame.iloc[380:], registry=Registry(get_tracker()))
    check = next(c for c in result.checks if c.kind == "trace")
    assert check.passed is True, check.summary
    steps = [s["kind"] for s in check.evidence["steps"]]
    assert steps == (["StandardScaler", "LogisticRegression"] if kind == "logreg" else ["RandomForestClassifier"])
    row = frame.iloc[380:].drop(columns=["label", "site"]).iloc[[0]]
    assert check.evidence["predict"] == model.predict(row).tolist()
    if kind == "logreg":
        scaled = model.steps[0][1].transform(row)
        assert check.evidence["steps"][0]["values"] == pytest.approx(scaled.ravel()[:6].tolist())

    class Lying:  # a wrapper whose predict is not what its model computes: not debuggable
        def __init__(self, inner: Any) -> None:
            self.native = inner

        def predict(self, data: Any) -> Any:
            return 1 - np.asarray(self.native.predict(data))

    assert trace_check(Lying(model), row).passed is False
    tests = _score()
    assert tests["Infra 5"]["status"] == "automated", tests["Infra 5"]


def test_a_new_upstream_data_version_is_noticed_by_a_monitor_rule(project: Path) -> None:
    """Monitor 1: the served version was trained on data:/train@1; once @2 and @3 land, every
    evaluation says so (new_data_versions) and the rule on it notifies."""
    import conveyor
    import conveyor.data
    import conveyor.models
    from conveyor.gates import promote
    from conveyor.monitoring import MonitorConfig, Monitoring
    from conveyor.registry import Registry
    from conveyor.tracking import get_tracker

    frame = _data()
    train = frame.iloc[:380]
    ref = conveyor.data.add(train.drop(columns=["site"]), name="train").ref
    model = _fit("logreg", train)
    with conveyor.start_run(experiment="deps") as run:
        conveyor.data.log_input(ref, run.id)
        conveyor.models.log(model, "model", input_example=train.drop(columns=["label", "site"]).head(3))
    tracker = get_tracker()
    tracker.flush()
    registry = Registry(tracker)
    version = registry.register(f"runs:/{run.id}/model", "deps").version
    assert registry.get(f"models:/deps/{version}").data_versions == (ref,)
    promote("deps", version, force=True, registry=registry, reason="test")
    config = MonitorConfig(name="deps", model="deps", target="label", rules=["new_data_versions > 0"])
    monitoring = Monitoring(tracker)
    window = _window(model, frame.iloc[380:], version, 1.0)
    calm = monitoring.evaluate(config, current=window)
    assert calm.metrics["new_data_versions"] == 0.0 and calm.status == "ok"
    for seed in (1, 2):
        conveyor.data.add(train.drop(columns=["site"]).sample(frac=0.9, random_state=seed), name="train")
    moved = monitoring.evaluate(config, current=window)
    assert moved.metrics["new_data_versions"] == 2.0 and moved.status == "alert" and moved.alert_ids
    tests = _score()
    assert tests["Monitor 1"]["status"] == "automated", tests["Monitor 1"]
    assert "new_data_versions > 0" in tests["Monitor 1"]["evidence"][0]
