"""Quickstart stage: the project's CI workflow (see ``_ci``), then its ML Test Score,
computed from what the earlier stages recorded (``conveyor score`` prints the same with
every test's evidence)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from conveyor.quickstart._run import Story


def stage(story: Story) -> None:
    from conveyor.ci import ml_test_score
    from conveyor.quickstart._ci import write_ci
    from conveyor.quickstart._gate import _gate

    from conveyor.quickstart._run import commit

    write_ci(story, _gate())
    story.console.print(commit(story.folder, "CI: gate workflow, unit tests, [gates.quickstart]"), markup=False)
    score = ml_test_score(story.tracker, story.folder)
    table = Table(title="ML Test Score (Breck et al. 2017): 1 automated, ½ manual, 0 missing")
    table.add_column("section")
    table.add_column("points", justify="right")
    table.add_column("earned by")
    for section, points in score.sections.items():
        earned = [t.id for t in score.tests if t.section == section and t.points]
        table.add_row(section, f"{points:g}", ", ".join(earned) or "—")
    story.console.print(table)
    story.console.print(f"[bold]final score {score.final:g}[/] (the minimum of the sections): {escape(score.band)}")
    story.console.print(f"Google MLOps level {score.google_level}, Microsoft maturity level {score.microsoft_level}",
                        markup=False)
    missing = [t for t in score.tests if t.status == "missing"][:3]
    for test in missing:
        story.console.print(f"  next: {test.id} — {test.earn}", markup=False)
    story.console.print("every test with its evidence: `conveyor score` · `conveyor score --html score.html`",
                        markup=False)
    story.facts["score"] = {"final": score.final, "sections": score.sections}
