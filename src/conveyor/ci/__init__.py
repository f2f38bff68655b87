"""CI/CD for models: ``ci_check`` (run the pipeline or take a candidate, gate it, render a
Markdown report for the pull request), ``ci_promote`` (the CD step) and workflow templates
for GitHub Actions and GitLab CI; ``ml_test_score``, the ML Test Score of a project from
evidence. Reads the ``[gates.<name>]`` tables (see conveyor.gates)."""

from conveyor.ci._check import CheckResult, ci_check, ci_promote, run_pipeline
from conveyor.ci._init import write_workflow
from conveyor.ci._report import render_report
from conveyor.ci._score import Score, TestResult, ml_test_score, record_evidence
from conveyor.ci._score_html import render_score_html

__all__ = [
    "CheckResult",
    "Score",
    "TestResult",
    "ci_check",
    "ci_promote",
    "ml_test_score",
    "record_evidence",
    "render_report",
    "render_score_html",
    "run_pipeline",
    "write_workflow",
]
