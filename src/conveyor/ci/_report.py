"""The Markdown report of a gate evaluation, ready to post as a pull-request comment."""

from __future__ import annotations

import json
from typing import Any

from conveyor.gates import Evaluation
from conveyor.gates._metrics import LOWER_IS_BETTER

_MARK = {True: "✅ pass", False: "❌ FAIL", None: "➖ skipped"}


def render_report(evaluation: Evaluation, *, candidate: Any = None, champion: Any = None) -> str:
    """Markdown: verdict, metrics with deltas vs the champion, every check with its
    evidence, the worst slices and links to the runs.

    Example::

        print(render_report(conveyor.gates.evaluate("default", "models:/churn/4", frame)))
    """
    verdict = "PASSED ✅" if evaluation.passed else "FAILED ❌"
    title = f"{evaluation.model}/{evaluation.version}" if evaluation.model else "candidate"
    lines = [f"## conveyor gate `{evaluation.gate}` for `{title}`: {verdict}", ""]
    against = f"champion version {evaluation.champion_version}" if evaluation.champion_version else "no champion yet"
    lines += [f"Evaluated on `{evaluation.dataset}` ({evaluation.n_rows:,} rows) against {against}.", ""]
    if evaluation.failures:
        lines += ["**Why it failed:**", ""] + [f"- {c.name}: {c.summary}" for c in evaluation.failures] + [""]
    lines += _metrics_table(evaluation)
    lines += ["### Checks", "", "| check | result | evidence |", "|---|---|---|"]
    for check in evaluation.checks:
        lines.append(f"| {check.name} | {_MARK[check.passed]} | {_cell(check.summary)} |")
    lines.append("")
    if evaluation.slices:
        lines += ["### Worst slices", "", "| slice | rows | metric | candidate | champion | result |", "|---|---|---|---|---|---|"]
        for s in evaluation.slices[:5]:
            result = {True: "pass", False: "FAIL", None: "not judged"}[s["passed"]]
            lines.append(f"| {s['column']} = {s['value']} | {s['n']} | {s['metric']} | {s['score']:.4f} | "
                         f"{_num(s.get('champion_score'))} | {result} |")
        lines.append("")
    lines += _cost_table(evaluation)
    lines += ["<details><summary>Evidence (JSON)</summary>", "", "```json"]
    lines.append(json.dumps([c.to_dict() for c in evaluation.checks], indent=1, default=str))
    lines += ["```", "</details>", ""]
    lines += _links(candidate, champion, evaluation)
    return "\n".join(lines).rstrip() + "\n"


def _metrics_table(evaluation: Evaluation) -> list[str]:
    champ = evaluation.champion_metrics or {}
    base = evaluation.baseline_metrics or {}
    out = ["### Metrics", "", "| metric | candidate | champion | Δ vs champion | baseline |", "|---|---|---|---|---|"]
    for key, value in sorted(evaluation.metrics.items()):
        delta = ""
        if key in champ:
            diff = value - champ[key]
            better = diff < 0 if key in LOWER_IS_BETTER else diff > 0
            delta = f"{diff:+.4f}" + (" ▲" if better else (" ▼" if diff else ""))
        out.append(f"| {key} | {value:.4f} | {_num(champ.get(key))} | {delta} | {_num(base.get(key))} |")
    return out + [""]


def _cost_table(evaluation: Evaluation) -> list[str]:
    """Each feature's cost next to its benefit (ML Test Score Data 3), costliest first."""
    found = next((c for c in evaluation.checks if c.kind == "feature_cost"), None)
    if found is None or not found.evidence.get("features"):
        return []
    measured = found.evidence["features"]
    out = ["### Feature cost", "",
           f"Predict: {found.evidence['predict_ms_per_1000']:.3f} ms per 1,000 rows ({found.evidence['rows']} rows, "
           f"median of {found.evidence['repeats']} paired timings per feature).", "",
           "| feature | + ms / 1,000 rows | share of predict time | Arrow bytes / row | importance |",
           "|---|---|---|---|---|"]
    for name in sorted(measured, key=lambda c: -measured[c]["share"]):
        e = measured[name]
        out.append(f"| {_cell(name)} | {e['ms_per_1000']:+.3f} ± {e['spread_ms_per_1000']:.3f} | {e['share']:.1%} | "
                   f"{e['bytes_per_row']:.1f} | {_num(e.get('importance'))} |")
    return out + [""]


def _links(candidate: Any, champion: Any, evaluation: Evaluation) -> list[str]:
    out = ["### Runs", ""]
    for label, version in (("candidate", candidate), ("champion", champion)):
        if version is not None and getattr(version, "run_id", None):
            out.append(f"- {label} `{version.uri}`: run `{version.run_id}` "
                       f"(`conveyor runs show {version.run_id}`), package `{version.digest}`")
    out.append(f"- evaluation `{evaluation.id}` (`conveyor models card {evaluation.model}/{evaluation.version}`)")
    return out


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
