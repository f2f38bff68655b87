from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ConfigError, Conflict, InvalidInput, NotFound
from conveyor.gates import define_gate, evaluate, evaluations, load_gate, promote
from conveyor.settings import Settings

GATE = dict(
    model="clf",
    metrics=["accuracy >= 0.7", "f1 >= champion.f1 - 0.02"],
    slices={"columns": ["region"], "bins": {"x0": 3}, "thresholds": ["accuracy >= 0.5"], "min_size": 20},
    baseline={"kind": "dummy", "margin": 0.1},
    operational={"max_size_mb": 50, "max_p95_latency_ms": 10_000, "latency_samples": 5},
)


def test_first_candidate_passes_on_absolute_thresholds_and_becomes_champion(
    registry: Any, candidate: Any, frames: Any
) -> None:
    version = candidate("good")
    result = evaluate(define_gate(**GATE), version.uri, frames[1], registry=registry)
    assert result.passed, [c.summary for c in result.failures]
    kinds = {c.kind for c in result.checks}
    assert kinds == {"threshold", "compare", "baseline", "slices", "data", "operational"}
    skipped = [c for c in result.checks if c.passed is None]
    assert {c.kind for c in skipped} == {"threshold", "compare"}  # nothing to compare with yet
    assert result.slices and {s["column"] for s in result.slices} == {"region", "x0"}
    event = promote("clf", version.version, registry=registry)
    assert event.evaluation_id == result.id and event.to_value == "1"
    assert evaluations(registry, "clf", 1)[0].passed


def test_worse_candidate_is_vetoed_with_evidence_and_the_refusal_recorded(
    registry: Any, candidate: Any, frames: Any
) -> None:
    spec = define_gate(**GATE)
    champion = candidate("good")
    evaluate(spec, champion.uri, frames[1], registry=registry)
    promote("clf", 1, registry=registry)
    worse = candidate("bad")
    result = evaluate(spec, worse.uri, frames[1], registry=registry)
    assert not result.passed and result.champion_version == 1
    failed = {c.name for c in result.failures}
    assert "compare: paired bootstrap of accuracy" in failed
    assert "compare: Tango score test" in failed  # accuracy's margin (0.01), tested as a margin
    paired = next(c for c in result.checks if c.name == "compare: Tango score test")
    assert paired.evidence["n"] == len(frames[1]) and paired.evidence["p_margin"] >= 0.05
    assert paired.evidence["p_worse"] < 0.05 and paired.evidence["delta0"] == -0.01
    with pytest.raises(Conflict, match="gate failed"):
        promote("clf", worse.version, registry=registry)
    assert registry.resolve("models:/clf@champion").version == 1
    assert registry.history("clf", alias="champion")[-1].kind == "promote_refused"


def test_force_needs_a_reason_and_is_recorded_as_forced(registry: Any, candidate: Any) -> None:
    version = candidate("bad")
    with pytest.raises(InvalidInput, match="reason") as info:
        promote("clf", version.version, force=True, registry=registry)
    assert info.value.field == "reason"
    with pytest.raises(Conflict, match="no gate evaluation"):
        promote("clf", version.version, registry=registry)
    event = promote("clf", version.version, force=True, reason="hotfix 812", registry=registry)
    assert event.forced and event.reason == "hotfix 812"


def test_gate_from_conveyor_toml_and_its_errors(tmp_path: Path) -> None:
    settings = Settings.from_mapping(tmp_path, {"gates": {"default": {"metrics": ["f1 >= 0.8"], "label": "y"}}})
    assert load_gate("default", settings).label == "y"
    bad = Settings.from_mapping(tmp_path, {"gates": {"g": {"metrics": ["f1 >= 0.8", "auc >= 0.9"]}}})
    with pytest.raises(InvalidInput, match="unknown metric 'auc'") as info:
        load_gate("g", bad)
    assert info.value.field == "gates.g.metrics[1]"
    typo = Settings.from_mapping(tmp_path, {"gates": {"g": {"slices": {"colums": ["a"]}}}})
    with pytest.raises(ConfigError, match="gates.g.slices.colums"):
        load_gate("g", typo)
    with pytest.raises(NotFound, match="gate 'missing'"):
        load_gate("missing", settings)


def test_evaluation_data_problems_fail_the_data_check(registry: Any, candidate: Any, frames: Any) -> None:
    version = candidate("good")
    broken = frames[1].drop(columns=["x3"])
    result = evaluate(define_gate(metrics=["accuracy >= 0.5"]), version.uri, broken, registry=registry)
    assert not result.passed
    assert result.failures[0].kind == "data" and "x3" in result.failures[0].summary
    with pytest.raises(InvalidInput, match="gates.default.label"):
        evaluate(define_gate(label="target"), version.uri, frames[1], registry=registry)


def test_linear_baseline_out_of_fold(registry: Any, candidate: Any, frames: Any) -> None:
    version = candidate("bad")
    spec = define_gate(baseline={"kind": "linear", "margin": 0.0}, compare=None)
    result = evaluate(spec, version.uri, frames[1], registry=registry)
    check = next(c for c in result.checks if c.kind == "baseline")
    assert check.passed is False and check.evidence["kind"] == "linear"


def test_columns_outside_the_signature_slice_but_are_not_features(registry: Any, candidate: Any, frames: Any) -> None:
    version = candidate("good")
    holdout = frames[1].assign(group=["a", "b"] * (len(frames[1]) // 2))
    spec = define_gate(metrics=["accuracy >= 0.7"], slices={"columns": ["group"], "thresholds": ["accuracy >= 0.6"]})
    result = evaluate(spec, version.uri, holdout, registry=registry)
    assert result.passed, [c.summary for c in result.failures]
    assert {s["column"] for s in result.slices} == {"group"}


def test_evaluation_on_a_versioned_data_set(registry: Any, candidate: Any, frames: Any, tracker: Any) -> None:
    import conveyor.data as cd

    version = candidate("good")
    added = cd.add(frames[1], name="holdout", tracker=tracker)
    result = evaluate(define_gate(metrics=["accuracy >= 0.7"]), version.uri, f"data:/holdout@{added.version}",
                      registry=registry)
    assert result.passed and result.dataset == f"data:/holdout@{added.version}" and result.n_rows == len(frames[1])
