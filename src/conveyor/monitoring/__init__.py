"""conveyor.monitoring: drift, data quality, live performance, alerts and retraining.

(The conveyor.toml keys of ``[monitoring]`` and ``[monitors.<name>]`` are documented in
``conveyor.monitoring._config``.)
"""

from conveyor.monitoring._drift import ColumnDrift, DriftReport, auto_method, compare
from conveyor.monitoring._quality import ColumnQuality, QualityReport, check_quality
from conveyor.monitoring._stats import STAT_TESTS, StatTest, get_stat_test, register_stat_test
from conveyor.monitoring._summary import ColumnSummary, Summary, summarize

__all__ = [
    "STAT_TESTS",
    "ColumnDrift",
    "ColumnQuality",
    "ColumnSummary",
    "DriftReport",
    "QualityReport",
    "StatTest",
    "Summary",
    "auto_method",
    "check_quality",
    "compare",
    "get_stat_test",
    "register_stat_test",
    "summarize",
]
