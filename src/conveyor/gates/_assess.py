"""The statistical core of a gate: metrics, thresholds, the paired comparison with the
champion, slices and the baseline, computed from labels and predictions alone."""

from __future__ import annotations

from typing import Any

import numpy as np

from conveyor.errors import InvalidInput
from conveyor.gates import _metrics as m
from conveyor.gates import _proba
from conveyor.gates import _stats
from conveyor.gates._result import Check
from conveyor.gates._slices import slice_checks
from conveyor.gates._spec import GateSpec

Array = Any


class Scored:
    """Labels, predictions and (when the models have them) class probabilities of one
    evaluation set, encoded once."""

    def __init__(self, spec: GateSpec, y: Array, cand: Array, champ: Array | None, base: Array | None,
                 probabilities: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.task = spec.task
        preds = [p for p in (cand, champ, base) if p is not None]
        self.encoded: m.Encoded | None
        if spec.task == "classification":
            self.encoded, codes = m.encode(y, *preds, positive=spec.positive_label)
            it = iter(codes)
            self.y = self.encoded.y
        else:
            self.encoded = None
            it = iter(np.asarray(p, dtype=np.float64) for p in preds)
            self.y = np.asarray(y, dtype=np.float64)
        self.cand = next(it)
        self.champ = next(it) if champ is not None else None
        self.base = next(it) if base is not None else None
        #: subject → probabilities, columns in the order of ``encoded.classes``
        self.proba: dict[str, Array] = {}
        if self.encoded is not None:
            for who, found in (probabilities or {}).items():
                if found is not None:
                    self.proba[who] = _proba.aligned(found[0], found[1], self.encoded.classes, who=who)

    def pred(self, who: str) -> Array | None:
        return {"candidate": self.cand, "champion": self.champ, "baseline": self.base}[who]

    def metrics(self, pred: Array, mask: Array | None = None, proba: Array | None = None) -> dict[str, float]:
        y = self.y if mask is None else self.y[mask]
        pred = pred if mask is None else pred[mask]
        if self.encoded is not None:
            values = m.classification_metrics(self.encoded.with_y(y) if mask is not None else self.encoded, pred)
            if proba is not None:
                values.update(_proba.probability_metrics(y, proba if mask is None else proba[mask],
                                                         self.encoded.positive))
            return values
        return m.regression_metrics(y, pred)

    def of(self, who: str, mask: Array | None = None) -> dict[str, float] | None:
        """The metrics of subject ``who`` (None when there is no such subject)."""
        pred = self.pred(who)
        return None if pred is None else self.metrics(pred, mask, self.proba.get(who))


def needed_probabilities(spec: GateSpec) -> dict[str, set[str]]:
    """Subject → probability metrics the gate's thresholds, comparison and baseline name."""
    need: dict[str, set[str]] = {}
    for threshold in [*spec.thresholds(), *spec.slice_thresholds()]:
        for who, metric in threshold.refs:
            if metric in m.PROBABILITY_METRICS:
                need.setdefault(who, set()).add(metric)
    if spec.compare is not None and spec.compare_metric in m.PROBABILITY_METRICS:
        for who in ("candidate", "champion"):
            need.setdefault(who, set()).add(spec.compare_metric)
    if spec.baseline is not None and (spec.baseline.metric or spec.compare_metric) in m.PROBABILITY_METRICS:
        for who in ("candidate", "baseline"):
            need.setdefault(who, set()).add(spec.baseline.metric or spec.compare_metric)
    return need


def _require_probabilities(spec: GateSpec, scored: Scored, names: dict[str, str]) -> None:
    for who, metrics in sorted(needed_probabilities(spec).items()):
        if scored.pred(who) is not None and who not in scored.proba:
            shown = ", ".join(sorted(metrics))
            raise InvalidInput(
                f"gate {spec.name!r} needs class probabilities for {shown}, but the {who} "
                f"{names.get(who, '')}has none (no predict_proba)".replace("  ", " "),
                field=f"{spec.prefix}.metrics", value=shown,
                hint="gate it on label metrics (accuracy, f1, …), or use a classifier with predict_proba "
                "(an SVC wrapped in CalibratedClassifierCV, for instance)",
            )


def assess(
    spec: GateSpec,
    y: Array,
    candidate: Array,
    champion: Array | None = None,
    *,
    frame: Any = None,
    baseline: Array | None = None,
    probabilities: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[Check], list[dict[str, Any]]]:
    """Metrics of each subject, the checks, and the slice table (worst first).

    ``probabilities`` maps ``"candidate"``/``"champion"``/``"baseline"`` to ``(predict_proba
    output, its class labels)`` for the subjects that have them; the probability metrics
    (roc_auc, log_loss, brier, ece) are then computed too.

    Example::

        spec = define_gate(metrics=["accuracy >= 0.8", "roc_auc >= 0.9"])
        metrics, checks, slices = assess(spec, y, model.predict(X), champion.predict(X),
                                         probabilities={"candidate": (model.predict_proba(X), model.classes_)})
    """
    scored = Scored(spec, y, candidate, champion, baseline, probabilities)
    _require_probabilities(spec, scored, names or {})
    values: dict[str, Any] = {who: scored.of(who) for who in ("candidate", "champion", "baseline")}
    checks = [_threshold_check(t, values) for t in spec.thresholds()]
    if spec.compare is not None:
        checks += compare_checks(spec, scored)
    if spec.baseline is not None:
        checks.append(_baseline_check(spec, values))
    slice_rows: list[dict[str, Any]] = []
    if spec.slices is not None and frame is not None:
        more, slice_rows = slice_checks(spec, scored, frame)
        checks += more
    return values, checks, slice_rows


def _threshold_check(threshold: Any, values: dict[str, Any]) -> Check:
    passed, actual, bound = threshold.check(values)
    if passed is None:
        missing = sorted(s for s in threshold.subjects if values.get(s) is None)
        summary = f"skipped: no {' or '.join(missing)} to compare with"
    else:
        summary = f"{threshold.metric} = {actual:.4f}, needs {threshold.op} {bound:.4f}"
    return Check(f"threshold: {threshold.text}", "threshold", passed, summary,
                 {"metric": threshold.metric, "value": actual, "bound": bound, "op": threshold.op})


def compare_checks(spec: GateSpec, scored: Scored) -> list[Check]:
    compare = spec.compare
    assert compare is not None
    metric = spec.compare_metric
    if scored.champ is None:
        return [Check(f"compare: {metric} vs champion", "compare", None, "skipped: no champion yet", {})]
    checks = []
    test = compare.test
    if test in ("auto", "bootstrap"):
        checks.append(_bootstrap_check(spec, scored, metric))
    if scored.task == "classification" and (test == "mcnemar" or (test == "auto" and metric == "accuracy")):
        evidence = _stats.paired_accuracy_test(scored.y, scored.cand, scored.champ, mode=compare.mode,
                                               margin=compare.margin)
        checks.append(_paired_test_check(spec, evidence, "accuracy"))
    if scored.task == "regression" and test in ("auto", "wilcoxon"):
        champ_value = scored.metrics(scored.champ)["rmse"]
        boundary = _stats.loss_margin(metric, compare.margin, compare.mode, scored.y, champ_value)
        evidence = _stats.wilcoxon(scored.y, scored.cand, scored.champ, squared=metric != "mae", boundary=boundary)
        checks.append(_paired_test_check(spec, evidence, metric))
    return checks


def _bootstrap_check(spec: GateSpec, scored: Scored, metric: str) -> Check:
    compare = spec.compare
    assert compare is not None and scored.champ is not None
    if metric in m.PROBABILITY_METRICS:
        assert scored.encoded is not None
        observed, deltas = _proba.bootstrap(scored.y, scored.proba["candidate"], scored.proba["champion"], metric,
                                            scored.encoded.positive, resamples=compare.resamples, seed=compare.seed)
        ev = _stats.interval(observed, deltas, compare.confidence, compare.resamples, len(scored.y))
    elif scored.encoded is not None:
        ev = _stats.bootstrap_classification(scored.encoded, scored.cand, scored.champ, metric,
                                             resamples=compare.resamples, confidence=compare.confidence, seed=compare.seed)
    else:
        ev = _stats.bootstrap_regression(scored.y, scored.cand, scored.champ, metric,
                                         resamples=compare.resamples, confidence=compare.confidence, seed=compare.seed)
    if metric in m.PROBABILITY_METRICS:
        differ = np.any(scored.proba["candidate"] != scored.proba["champion"], axis=-1)
    else:
        differ = np.asarray(scored.cand) != np.asarray(scored.champ)
    ev["disagreements"] = int(np.count_nonzero(differ))
    degenerate = ev["ci_low"] == ev["ci_high"]
    # every resample gives the same improvement (the models never disagree): there is no
    # interval to estimate, only that exact difference; the rule is applied to it
    bound = ev["observed_improvement"] if degenerate else ev["ci_low"]
    if compare.mode == "non_inferior":
        passed = bound >= -compare.margin
        rule = f"lower bound ≥ −{compare.margin:g} (non-inferiority)"
    else:
        passed = bound > compare.margin
        rule = f"lower bound > {compare.margin:g} (superiority)"
    ev.update(metric=metric, mode=compare.mode, margin=compare.margin, rule=rule)
    if degenerate:
        why = (f"no disagreement on {ev['n']} rows" if ev["disagreements"] == 0 else
               f"all {ev['resamples']} resamples give the same improvement ({ev['disagreements']} of {ev['n']} rows differ)")
        ev.update(ci_low=None, ci_high=None, interval="degenerate",
                  interval_note=f"{why}: the {compare.confidence:.0%} CI is undefined (degenerate at "
                                f"{ev['observed_improvement']:+.4f}); the rule is applied to that exact difference")
        summary = (f"{metric} improvement {ev['observed_improvement']:+.4f} exactly; {why}, so a "
                   f"{compare.confidence:.0%} CI is undefined (degenerate); needs {rule}, applied to the exact "
                   "improvement")
    else:
        summary = (
            f"{metric} improvement {ev['observed_improvement']:+.4f}, {compare.confidence:.0%} CI "
            f"[{ev['ci_low']:+.4f}, {ev['ci_high']:+.4f}] ({ev['resamples']} paired resamples, n={ev['n']}, "
            f"{ev['disagreements']} rows where the models differ); needs {rule}"
        )
    return Check(f"compare: paired bootstrap of {metric}", "compare", bool(passed), summary, ev)


def _paired_test_check(spec: GateSpec, ev: dict[str, Any], metric: str) -> Check:
    """Pass when the test rejects "worse than allowed" (non_inferior: by more than the margin;
    superior: not better by the margin) at ``alpha`` — a margin is always tested as a margin."""
    compare = spec.compare
    assert compare is not None
    p = ev["p_margin"]
    passed = p < compare.alpha
    if compare.mode == "non_inferior":
        rule = f"evidence the candidate is at most {compare.margin:g} worse (one-sided p < {compare.alpha:g})"
    else:
        rule = f"evidence the candidate is more than {compare.margin:g} better (one-sided p < {compare.alpha:g})"
    ev.update(metric=metric, alpha=compare.alpha, mode=compare.mode, margin=compare.margin, rule=rule)
    if "candidate_only_right" in ev:
        detail = (f"{ev['candidate_only_right']} rows only the candidate gets right, "
                  f"{ev['champion_only_right']} only the champion (accuracy {ev['difference']:+.4f})")
    else:
        detail = (f"mean loss difference {ev['mean_loss_difference']:+.4g}, median {ev['median_loss_difference']:+.4g}"
                  f" ({ev['loss']}; tested against {ev['boundary']:+.4g})")
    summary = f"{ev['test']}: {detail}; one-sided p = {p:.3g}, n={ev['n']}; needs {rule}"
    return Check(f"compare: {ev['test'].split(' (')[0]}", "compare", bool(passed), summary, ev)


def _baseline_check(spec: GateSpec, values: dict[str, Any]) -> Check:
    baseline = spec.baseline
    assert baseline is not None
    metric = baseline.metric or spec.compare_metric
    base = values.get("baseline")
    if base is None:
        return Check(f"baseline: {baseline.kind}", "baseline", None, "skipped: no baseline predictions", {})
    gain = float(m.improvement(metric, np.float64(values["candidate"][metric]), np.float64(base[metric])))
    passed = gain >= baseline.margin
    summary = (
        f"{metric} {values['candidate'][metric]:.4f} vs {baseline.kind} baseline {base[metric]:.4f}: "
        f"gain {gain:+.4f}, needs ≥ {baseline.margin:g}"
    )
    return Check(f"baseline: beat {baseline.kind} by {baseline.margin:g}", "baseline", passed, summary,
                 {"metric": metric, "candidate": values["candidate"][metric], "baseline": base[metric],
                  "gain": gain, "margin": baseline.margin, "kind": baseline.kind})
