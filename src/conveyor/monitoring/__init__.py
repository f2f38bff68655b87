"""conveyor.monitoring: drift, data quality, live performance, alerts and retraining.

::

    from conveyor.monitoring import compare, summarize

    ref = summarize(train_df)                     # once; stored with the data set version
    report = compare(ref, live_df, prediction="prediction")
    report.drift_share, report.column("age").drifted, report.quality.columns["age"].missing_rate

Drift statistics (``STAT_TESTS``): ``ks``, ``wasserstein``, ``psi``, ``jensenshannon``,
``chisquare``, ``z``; the automatic choice follows Evidently's rule (see ``_drift``), and
exact-versus-sketch computation is described in ``_stats``. Monitors, rules and
retraining are declared in conveyor.toml; every key of ``[monitoring]`` and
``[monitors.<name>]`` is documented (with an example table) in the docstring of
``conveyor.monitoring._config``.
"""

from conveyor.monitoring._config import MonitorConfig, MonitoringDefaults, load_monitors, parse_duration
from conveyor.monitoring._drift import ColumnDrift, DriftReport, auto_method, compare
from conveyor.monitoring._monitor import Evaluation, MonitorHooks, Monitoring, flatten
from conveyor.monitoring._performance import PerformanceRow, live_performance, score_frame
from conveyor.monitoring._quality import ColumnQuality, QualityReport, check_quality
from conveyor.monitoring._reference import reference_summary, store_summary
from conveyor.monitoring._report import render_html, report_data
from conveyor.monitoring._retrain import ContinuousTrainer, RetrainHook, RetrainOutcome
from conveyor.monitoring._rules import METRICS, Rule, RuleResult, parse_rule
from conveyor.monitoring._stats import STAT_TESTS, StatTest, get_stat_test, register_stat_test
from conveyor.monitoring._summary import ColumnSummary, Summary, summarize
from conveyor.monitoring._webhook import Delivery, Notifier

__all__ = [
    "ColumnDrift",
    "ColumnQuality",
    "ColumnSummary",
    "ContinuousTrainer",
    "Delivery",
    "DriftReport",
    "Evaluation",
    "METRICS",
    "MonitorConfig",
    "MonitorHooks",
    "Monitoring",
    "MonitoringDefaults",
    "Notifier",
    "PerformanceRow",
    "QualityReport",
    "RetrainHook",
    "RetrainOutcome",
    "Rule",
    "RuleResult",
    "STAT_TESTS",
    "StatTest",
    "Summary",
    "auto_method",
    "check_quality",
    "compare",
    "flatten",
    "get_stat_test",
    "live_performance",
    "load_monitors",
    "parse_duration",
    "parse_rule",
    "reference_summary",
    "register_stat_test",
    "render_html",
    "report_data",
    "score_frame",
    "store_summary",
    "summarize",
]
