"""``conveyor score``: the ML Test Score of a project, computed from evidence.

Each of the 28 tests of Breck et al. (2017) gets 1 point when a system runs it
automatically on a repeated basis *and* the stores show it ran, ½ point when it was done
by hand with a documented result (a run of ``conveyor score record``), 0 otherwise. The
section sums are added up per section and the final score is their minimum (the 2017
rule), with its band of Table V. Every result names the records it used and, when not
full, what would earn the point.

Example::

    score = conveyor.ci.ml_test_score(tracker, settings.root)
    print(score.final, score.band)
    for test in score.tests:
        print(test.id, test.points, test.evidence)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conveyor.ci._evidence import MANUAL_EXPERIMENT, TAG_EVIDENCE, TAG_REF, TAG_TEST, Facts, collect
from conveyor.ci._rubric import SECTIONS, TESTS, RubricTest, band, find_test

__all__ = ["Score", "TestResult", "ml_test_score", "record_evidence"]

AUTOMATED, MANUAL, MISSING = "automated", "manual", "missing"


@dataclass(frozen=True)
class TestResult:
    id: str
    title: str
    section: str
    status: str  # automated | manual | missing
    points: float
    evidence: tuple[str, ...]
    earn: str | None  # what would earn the full point; None when it is earned


@dataclass(frozen=True)
class Score:
    tests: tuple[TestResult, ...]
    sections: dict[str, float]
    final: float
    band: str
    google_level: int
    google_reasons: tuple[str, ...]
    microsoft_level: int
    microsoft_reasons: tuple[str, ...]
    ignored: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Verdict = tuple[str, list[str]]  # (status, evidence lines)
Rule = Callable[[Facts], Verdict]


def _auto(*lines: str) -> Verdict:
    return AUTOMATED, list(lines)


def _half(*lines: str) -> Verdict:
    return MANUAL, list(lines)


def _none(*lines: str) -> Verdict:
    return MISSING, list(lines)


def _gate(f: Facts, kind: str, what: str) -> Verdict | None:
    n = f.gate_checks.get(kind, 0)
    return _auto(f"{n} gate evaluation(s) ran the {what}") if n else None


def _data1(f: Facts) -> Verdict:
    shown = ", ".join(f.schema_versions[:3]) + (" …" if len(f.schema_versions) > 3 else "")
    found = _gate(f, "data", "schema check of the evaluation data")
    if found and f.schema_versions:
        return AUTOMATED, found[1] + [f"schemas inferred for {len(f.schema_versions)} data set version(s): {shown}"]
    if f.schema_versions:
        return _half(f"schemas inferred for {shown}, but no gate checks data against them")
    return _none("no versioned table data set")


def _data4(f: Facts) -> Verdict:
    return _gate(f, "data.schema", "validation of the evaluation data against the project's kept schema file") \
        or _none("no gate validated its data against a kept schema file")


def _data5(f: Facts) -> Verdict:
    return _gate(f, "privacy", "scan of the evaluation data for personal data outside the allowed columns") \
        or _none("no gate scanned its data for personal data")


def _model4(f: Facts) -> Verdict:
    return _gate(f, "staleness", "scoring of older versions on today's data (quality lost per day of age)") \
        or _none("no gate measured how older versions do on today's data")


def _data6(f: Facts) -> Verdict:
    gated = [p for p in f.promotions if p["gated"]]
    if f.pipeline_runs and gated:
        return _auto(f"{f.pipeline_runs} pipeline run(s); {len(gated)} gated promotion(s)")
    if f.pipeline_runs:
        return _half(f"{f.pipeline_runs} pipeline run(s), but no gated promotion")
    return _none("no pipeline run")


def _data7(f: Facts) -> Verdict:
    files = f.ci_runs("pytest")
    return _auto(f"CI runs pytest: {', '.join(files)}") if files else _none("no CI workflow runs pytest")


def _model1(f: Facts) -> Verdict:
    reviewed = f.ci_runs("conveyor ci check")
    if f.runs_clean and reviewed:
        return _auto(f"{f.runs_clean} of {f.runs} run(s) trained from a clean git commit",
                     f"pull requests gated by {', '.join(reviewed)}")
    if f.runs_with_commit:
        return _half(f"{f.runs_with_commit} of {f.runs} run(s) record a git commit ({f.runs_clean} from a clean tree)",
                     "no CI workflow runs `conveyor ci check`")
    return _none("no run records a git commit (is the project a git repository?)")


def _model2(f: Facts) -> Verdict:
    live = sorted(m for m in ("accuracy", "f1", "roc_auc", "rmse", "mae", "precision", "recall")
                  if m in f.monitor_metrics)
    if live and f.gate_evaluations:
        return _auto(f"live {', '.join(live)} from feedback in {f.monitor_evaluations} monitor evaluation(s)",
                     f"offline figures in {f.gate_evaluations} gate evaluation(s)")
    if f.gate_evaluations:
        return _half(f"offline figures in {f.gate_evaluations} gate evaluation(s); no live quality from feedback yet")
    return _none("no gate evaluation and no live quality")


def _data2(f: Facts) -> Verdict:
    return _gate(f, "features", "permutation importance of every feature") or _none(
        "no gate measured feature importance")


def _data3(f: Facts) -> Verdict:
    return _gate(f, "feature_cost.measured", "measurement of each feature's cost (predict time it adds, Arrow bytes "
                 "per row) next to its permutation importance") or _none("no gate measured what each feature costs")


def _model7(f: Facts) -> Verdict:
    return _gate(f, "slices.protected", "slice thresholds over protected columns") or _none(
        "no gate judged slices of protected columns")


def _monitor3(f: Facts) -> Verdict:
    rules = f.rule_on("skew_mismatch_rate")
    if "skew_mismatch_rate" in f.monitor_metrics and rules:
        return _auto(f"logged serving rows re-predicted with the training package in {f.monitor_evaluations} "
                     f"monitor evaluation(s); rules: {'; '.join(rules)}")
    if "skew_mismatch_rate" in f.monitor_metrics:
        return _half("skew_mismatch_rate measured by the monitor, but no rule alerts on it")
    return _none("no monitor evaluation re-predicted logged serving rows")


def _model3(f: Facts) -> Verdict:
    if f.sweeps:
        return _auto(f"{len(f.sweeps)} hyperparameter sweep(s) recorded")
    return _none("no sweep recorded")


def _model5(f: Facts) -> Verdict:
    return _gate(f, "baseline", "baseline comparison") or _none("no gate compared the candidate with a baseline")


def _model6(f: Facts) -> Verdict:
    return _gate(f, "slices", "slice thresholds") or _none("no gate judged data slices")


def _infra1(f: Facts) -> Verdict:
    if f.not_reproduced:
        return _none(f"repeated executions differed: {', '.join(f.not_reproduced)}")
    if f.reproduced:
        return _auto(f"repeated uncached executions gave identical outputs: {', '.join(f.reproduced)}")
    return _none("no step was executed twice without the cache")


def _infra2(f: Facts) -> Verdict:
    files = f.ci_runs("pytest")
    return _auto(f"CI runs pytest: {', '.join(files)}") if files else _none("no CI workflow runs pytest")


def _infra3(f: Facts) -> Verdict:
    files = f.ci_runs("--pipeline")
    if files:
        return _auto(f"CI gates the whole pipeline: {', '.join(files)}")
    if f.pipeline_runs:
        return _half(f"{f.pipeline_runs} pipeline run(s) end to end, but not in CI")
    return _none("no pipeline run")


def _infra4(f: Facts) -> Verdict:
    gated = [p for p in f.promotions if p["gated"] and not p["forced"]]
    ungated = [p for p in f.promotions if not p["gated"] or p["forced"]]
    if gated and not ungated:
        return _auto(f"all {len(gated)} promotion(s) went through a passed gate evaluation")
    if gated:
        return _half(f"{len(gated)} gated promotion(s), {len(ungated)} without a passed evaluation or forced: "
                     + ", ".join(p["uri"] + " → v" + str(p["version"]) for p in ungated[:3]))
    return _none("no promotion went through a gate")


def _infra5(f: Facts) -> Verdict:
    traced = f.gate_checks.get("trace", 0)
    if traced and f.package_versions:
        return _auto(f"{traced} gate evaluation(s) stepped a row through the loaded package and matched predict",
                     f"{f.package_versions} of {f.versions} registered version(s) are conveyor packages with their run")
    if f.package_versions:
        return _half(f"{f.package_versions} of {f.versions} registered version(s) are conveyor packages with their "
                     "run: each loads locally and predicts a single row")
    return _none("no registered version is a conveyor package with its run")


def _infra6(f: Facts) -> Verdict:
    loaded = f.gate_checks.get("operational", 0)
    if loaded and f.canaries:
        return _auto(f"{loaded} gate evaluation(s) loaded the package in the serving code",
                     f"canary traffic (two versions served in the same hour): {', '.join(f.canaries)}")
    if loaded or f.canaries:
        return _half(f"{loaded} operational gate check(s); canaried models: {', '.join(f.canaries) or 'none'}")
    return _none("no operational gate check and no canary")


def _infra7(f: Facts) -> Verdict:
    if f.rollbacks:
        return _auto(f"{len(f.rollbacks)} rollback(s) practised: {', '.join(f.rollbacks[:3])}")
    return _none("no rollback recorded")


def _monitor1(f: Facts) -> Verdict:
    if f.triggers.get("new_data"):
        return _auto(f"{f.triggers['new_data']} retraining(s) triggered by a new upstream data version")
    rules = f.rule_on("new_data_versions")
    if "new_data_versions" in f.monitor_metrics and rules:
        return _auto(f"monitor evaluations compared the served version's training data with its upstream data "
                     f"sets; notifying rules: {'; '.join(rules)}")
    if f.runs_with_packages:
        return _half(f"{f.runs_with_packages} run(s) record their installed packages (changes are visible, "
                     "nothing notifies)")
    return _none("no record of dependencies")


def _monitor2(f: Facts) -> Verdict:
    seen = sorted({m for m in f.monitor_metrics if m in ("drift_share", "n_drifted")} |
                  {m.split("(")[0] for m in f.monitor_metrics if m.startswith(("missing_rate", "out_of_range_rate"))})
    if f.monitor_evaluations and seen:
        return _auto(f"{f.monitor_evaluations} monitor evaluation(s) of serving inputs: {', '.join(seen)}")
    return _none("no monitor evaluation of serving inputs")


def _monitor4(f: Facts) -> Verdict:
    found = []
    if f.triggers.get("schedule"):
        found.append(f"{f.triggers['schedule']} scheduled retraining(s)")
    if "model_age_days" in f.monitor_metrics and f.rule_on("model_age_days"):
        found.append(f"staleness rules: {'; '.join(f.rule_on('model_age_days'))}")
    return _auto(*found) if found else _none("no scheduled retraining and no rule on model_age_days")


def _monitor5(f: Facts) -> Verdict:
    rules = sorted({r for r in f.monitor_rules if "prediction" in r and "missing_rate" in r}
                   | set(f.rule_on("nonfinite_prediction_rate")))
    return _auto(f"rules: {'; '.join(rules)}") if rules else _none("no rule on missing or non-finite predictions")


def _monitor6(f: Facts) -> Verdict:
    rules = f.rule_on("p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "p95_latency_ratio")
    if rules:
        return _auto(f"rules: {'; '.join(rules)}")
    if f.gate_checks.get("operational"):
        return _half(f"latency measured by {f.gate_checks['operational']} gate evaluation(s), no live alert")
    return _none("no latency rule")


def _monitor7(f: Facts) -> Verdict:
    rules = f.rule_on("accuracy", "f1", "roc_auc", "rmse", "mae", "precision", "recall")
    if rules and f.feedback_models:
        return _auto(f"rules: {'; '.join(rules)}", f"feedback for {', '.join(sorted(f.feedback_models))}")
    if rules:
        return _half(f"rules: {'; '.join(rules)}; no feedback labels yet")
    return _none("no live quality rule")


def _manual_only(f: Facts) -> Verdict:
    return _none()


RULES: dict[str, Rule] = {
    "Data 1": _data1, "Data 2": _data2, "Data 3": _data3, "Data 4": _data4, "Data 5": _data5, "Data 6": _data6, "Data 7": _data7,
    "Model 1": _model1, "Model 2": _model2, "Model 3": _model3, "Model 4": _model4, "Model 5": _model5, "Model 6": _model6,
    "Model 7": _model7,
    "Infra 1": _infra1, "Infra 2": _infra2, "Infra 3": _infra3, "Infra 4": _infra4, "Infra 5": _infra5,
    "Infra 6": _infra6, "Infra 7": _infra7,
    "Monitor 1": _monitor1, "Monitor 2": _monitor2, "Monitor 3": _monitor3, "Monitor 4": _monitor4, "Monitor 5": _monitor5,
    "Monitor 6": _monitor6, "Monitor 7": _monitor7,
}
POINTS = {AUTOMATED: 1.0, MANUAL: 0.5, MISSING: 0.0}


def _judge(test: RubricTest, facts: Facts) -> TestResult:
    status, evidence = RULES.get(test.id, _manual_only)(facts)
    records = facts.manual.get(test.id, [])
    if status == MISSING and records:
        status = MANUAL
    evidence += [f"recorded by hand ({r.run_id[:8]}): {r.evidence}" + (f" [{r.ref}]" if r.ref else "")
                 for r in records]
    return TestResult(test.id, test.title, test.section, status, POINTS[status], tuple(evidence),
                      None if status == AUTOMATED else test.earn)


def ml_test_score(tracker: Any, root: Path) -> Score:
    """Score the project whose stores ``tracker`` opens and whose files live in ``root``."""
    facts = collect(tracker, root)
    tests = tuple(_judge(test, facts) for test in TESTS)
    sections = {s: sum(t.points for t in tests if t.section == s) for s in SECTIONS}
    final = min(sections.values())
    g_level, g_reasons = _google_level(facts, {t.id: t for t in tests})
    m_level, m_reasons = _microsoft_level(facts, {t.id: t for t in tests})
    return Score(tests, sections, final, band(final), g_level, tuple(g_reasons), m_level, tuple(m_reasons),
                 tuple(facts.ignored))


def _google_level(f: Facts, t: dict[str, TestResult]) -> tuple[int, list[str]]:
    """Google Cloud's levels: 0 manual; 1 ML pipeline automation with continuous training
    (pipeline, automated data and model validation, metadata, triggers); 2 adds CI/CD of
    the pipeline itself."""
    level1 = {
        "an orchestrated training pipeline": f.pipeline_runs > 0,
        "automated data validation before training (gate data check)": t["Data 1"].status == AUTOMATED,
        "automated model validation before serving": t["Infra 4"].status == AUTOMATED,
        "a trigger retrained the model (continuous training)": sum(f.triggers.values()) > 0,
        "metadata of every run": f.runs > 0,
    }
    missing1 = [k for k, ok in level1.items() if not ok]
    if missing1:
        return 0, [f"level 1 needs {m}" for m in missing1]
    level2 = {"CI builds and tests the pipeline (`conveyor ci check --pipeline` in a workflow)": bool(f.ci_runs("--pipeline")),
              "unit tests of the pipeline code in CI": bool(f.ci_runs("pytest"))}
    missing2 = [k for k, ok in level2.items() if not ok]
    reasons = [f"level 1: {k}" for k in level1]
    if missing2:
        return 1, reasons + [f"level 2 needs {m}" for m in missing2]
    return 2, reasons + [f"level 2: {k}" for k in level2]


def _microsoft_level(f: Facts, t: dict[str, TestResult]) -> tuple[int, list[str]]:
    """Microsoft's maturity model: 0 no MLOps; 1 DevOps, no MLOps (CI for code); 2 automated
    training (tracked, reproducible runs, registry); 3 automated model deployment (gated
    release, A/B or canary); 4 full MLOps automated operations (monitoring triggers
    retraining)."""
    steps = [
        (1, "CI for the code", bool(f.ci_files)),
        (2, "tracked, orchestrated training with a model registry", f.pipeline_runs > 0 and f.versions > 0),
        (3, "gated, recorded model release", t["Infra 4"].status != MISSING),
        (4, "monitoring that triggers retraining automatically", f.triggers.get("alert", 0) > 0),
    ]
    level, reasons = 0, []
    for number, what, ok in steps:
        if not ok:
            reasons.append(f"level {number} needs {what}")
            break
        level = number
        reasons.append(f"level {number}: {what}")
    return level, reasons


def record_evidence(tracker: Any, test_id: str, evidence: str, *, ref: str | None = None) -> str:
    """Record a manual result for ``test_id`` (½ point while it stands); returns the run id.

    ``ref`` (``runs:/<id>/…``) names the run holding the result; deleting it withdraws
    the point."""
    from conveyor.errors import InvalidInput

    test = find_test(test_id)
    if not evidence.strip():
        raise InvalidInput("evidence is empty", field="evidence", value=evidence,
                           hint="say where the documented result is, e.g. a report URL or a run")
    if ref is not None:
        if not ref.startswith("runs:/"):
            raise InvalidInput(f"ref {ref!r} is not a runs:/ URI", field="ref", value=ref,
                               hint="write runs:/<run_id> or runs:/<run_id>/<path>")
        tracker.get_run(ref[6:].split("/")[0])  # NotFound when it does not exist
    run = tracker.create_run(MANUAL_EXPERIMENT, name=f"{test.id}: manual result",
                             tags={TAG_TEST: test.id, TAG_EVIDENCE: evidence, **({TAG_REF: ref} if ref else {})})
    tracker.end_run(run.id)
    return str(run.id)
