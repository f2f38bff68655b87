"""A self-contained HTML page of a :class:`~conveyor.ci.Score` (no script, no external file;
every text escaped)."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render_score_html"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1a1a1a;padding:0 1rem}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#eee}.automated{background:#d8f0d8}.manual{background:#fff1c2}.missing{background:#f8d7d7}
.earn{color:#444;font-style:italic}.final{font-size:1.4rem}
"""
_POINTS = {"automated": "1", "manual": "½", "missing": "0"}


def render_score_html(score: Any) -> str:
    """The score, the section sums, the maturity levels and every test with its evidence."""
    rows = []
    for test in score.tests:
        evidence = "".join(f"<li>{escape(line)}</li>" for line in test.evidence)
        earn = f'<p class="earn">To earn it: {escape(test.earn)}</p>' if test.earn else ""
        rows.append(f'<tr class="{test.status}"><td>{escape(test.id)}</td><td>{escape(test.title)}</td>'
                    f"<td>{_POINTS[test.status]} ({test.status})</td><td><ul>{evidence}</ul>{earn}</td></tr>")
    sections = "".join(f"<tr><td>{escape(s)}</td><td>{p:g}</td></tr>" for s, p in score.sections.items())
    ignored = "".join(f"<li>{escape(n)}</li>" for n in score.ignored)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ML Test Score</title><style>{_STYLE}</style></head>
<body><main>
<h1>ML Test Score</h1>
<p class="final"><strong>{score.final:g}</strong> — {escape(score.band)}</p>
<p>The minimum of the four section sums (Breck et al., IEEE BigData 2017): 1 point for a test run
automatically, ½ for one done by hand with a documented result.</p>
<table aria-label="section sums"><thead><tr><th>section</th><th>points</th></tr></thead><tbody>{sections}</tbody></table>
<h2>Maturity</h2>
<p>Google MLOps level <strong>{score.google_level}</strong>: {escape("; ".join(score.google_reasons))}</p>
<p>Microsoft MLOps maturity level <strong>{score.microsoft_level}</strong>:
{escape("; ".join(score.microsoft_reasons))}</p>
<h2>Tests</h2>
<table aria-label="tests"><thead><tr><th>test</th><th>title</th><th>points</th><th>evidence</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
{f"<h2>Not counted</h2><ul>{ignored}</ul>" if ignored else ""}
</main></body></html>
"""
