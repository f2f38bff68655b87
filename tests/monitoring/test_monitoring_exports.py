"""The public surface of conveyor.monitoring is pinned and sorted."""

from __future__ import annotations

import conveyor.monitoring

EXPECTED = [
    "ColumnDrift", "ColumnQuality", "ColumnSummary", "ContinuousTrainer", "Delivery", "DriftReport",
    "Evaluation", "METRICS", "MonitorConfig", "MonitorHooks", "Monitoring", "MonitoringDefaults", "Notifier",
    "PerformanceRow", "QualityReport", "RetrainHook", "RetrainOutcome", "Rule", "RuleResult", "STAT_TESTS",
    "StatTest", "Summary", "auto_method", "check_quality", "compare", "flatten", "get_stat_test",
    "live_performance", "load_monitors", "parse_duration", "parse_rule", "reference_summary",
    "register_stat_test", "render_html", "report_data", "score_frame", "store_summary", "summarize",
]


def test_public_names_are_pinned_and_sorted():
    assert conveyor.monitoring.__all__ == EXPECTED == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(conveyor.monitoring, name) is not None


def test_every_stat_test_honours_the_contract():
    """One contract for every drift statistic, built-in or registered: same column → no drift."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"n": np.random.default_rng(0).normal(size=3000),
                          "c": np.random.default_rng(1).choice(list("abc"), 3000)})
    summary = conveyor.monitoring.summarize(frame)
    for name, test in conveyor.monitoring.STAT_TESTS.items():
        for column in ("n", "c"):
            kind = summary[column].kind
            if kind not in test.kinds or (name == "z") or (name.startswith("chisquare") and kind == "numeric"):
                continue
            value = test.compute(summary[column], summary[column], kind != "numeric")[0]
            assert not test.drifted(value, test.threshold), (name, column, value)
