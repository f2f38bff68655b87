"""CI/CD for models: ``ci_check`` (run the pipeline or take a candidate, gate it, render a
Markdown report for the pull request), ``ci_promote`` (the CD step) and workflow templates
for GitHub Actions and GitLab CI. Reads the ``[gates.<name>]`` tables (see conveyor.gates)."""

from conveyor.ci._check import CheckResult, ci_check, ci_promote, run_pipeline
from conveyor.ci._init import write_workflow
from conveyor.ci._report import render_report

__all__ = ["CheckResult", "ci_check", "ci_promote", "render_report", "run_pipeline", "write_workflow"]
