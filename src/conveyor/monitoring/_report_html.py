"""The HTML page of a monitoring report document (``_report``): one self-contained file.

What it shows, in order: the verdict in one sentence; prediction drift (the model's
outputs against the training labels, and its scores against the first window's, when the
document has them); the drift table — statistic, p-value or distance, threshold and the
drifted flag as numbers, one row per column, drifted first and then by how far past its
threshold, re-sortable by any column header; a reference-vs-current histogram per column
(in the table's order) with axes, tick values and the share of every bin on hover; and
each metric over time beside its offline value. Styles and the 20-line sorting script are
inline; nothing is fetched, every name is escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from conveyor.monitoring._charts import CSS as CHART_CSS
from conveyor.monitoring._charts import fmt, histogram, line

_CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d1d1d;max-width:1200px}"
    "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}"
    "th button:focus-visible{outline:2px solid #1565c0}"
    ".drift{color:#b00020;font-weight:600}.grid{display:flex;flex-wrap:wrap;gap:12px}"
    ".card{border:1px solid #ccc;border-radius:4px;padding:6px 8px;width:360px;box-sizing:border-box}.card h3{margin:0 0 2px;font-size:14px}"
    ".card dl{display:flex;flex-wrap:wrap;gap:2px 10px;margin:0 0 4px;font-size:12px}.card dt{color:#555}"
    ".card dd{margin:0 6px 0 0;font-variant-numeric:tabular-nums}.muted{color:#595959}"
) + CHART_CSS

_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th button').forEach(function (button, col) {
    button.addEventListener('click', function () {
      var th = button.parentNode, asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var nx = parseFloat(x), ny = parseFloat(y), d;
        if (!isNaN(nx) && !isNaN(ny)) d = nx - ny; else d = String(x).localeCompare(String(y));
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def is_pvalue(method: str) -> bool | None:
    """Whether ``method``'s value is a p-value (small = drift); None for unknown methods."""
    from conveyor.monitoring._stats import STAT_TESTS

    test = STAT_TESTS.get(method)
    return None if test is None else test.is_pvalue


def severity(column: dict[str, Any]) -> float:
    """How far past its threshold a column is (> 1 drifted): value/threshold for a distance,
    threshold/value for a p-value; −1 when it has no verdict."""
    value, threshold = column.get("value"), column.get("threshold") or 0.0
    if column.get("status") != "ok" or value is None or (isinstance(value, float) and math.isnan(value)):
        return -1.0
    if is_pvalue(column.get("method", "")):
        return threshold / value if value > 0 else math.inf
    return value / threshold if threshold > 0 else value


def ordered(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifted first, then by severity (strongest first), then by name."""
    return sorted(columns, key=lambda c: (not c.get("drifted"), -severity(c), str(c.get("column"))))


def _statistic(column: dict[str, Any]) -> str:
    stats = column.get("statistics") or {}
    return ", ".join(f"{html.escape(str(k))} = {fmt(v)}" for k, v in stats.items() if k != "p_value")


def _pvalue_distance(column: dict[str, Any]) -> tuple[Any, Any]:
    value = column.get("value")
    if is_pvalue(column.get("method", "")):
        return value, None
    return (column.get("statistics") or {}).get("p_value"), value


def _flag(column: dict[str, Any]) -> str:
    if column.get("status") != "ok":
        return "<span class=muted>no verdict</span>"
    return "<span class=drift>drifted</span>" if column.get("drifted") else "no"


def _num_cell(value: Any) -> str:
    key = "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"
    return f"<td class=num data-sort='{key}'>{fmt(value)}</td>"


def _sort_key(value: Any) -> str:
    return html.escape(str(value), quote=True)


_HEADERS = ("column", "kind", "role", "method", "statistic", "p-value", "distance", "threshold", "drifted",
            "missing", "rows (ref / cur)", "note")


def drift_table(columns: list[dict[str, Any]], quality: dict[str, Any]) -> str:
    """The per-column drift table (drifted first), sortable by every header."""
    e = html.escape
    head = "".join(f"<th scope=col><button type=button>{h}</button></th>" for h in _HEADERS)
    out = [f"<table class='sortable drift-table'><thead><tr>{head}</tr></thead><tbody>"]
    for c in ordered(columns):
        q = quality.get(c["column"], {})
        p, d = _pvalue_distance(c)
        drifted = 2 if c.get("drifted") else (1 if c.get("status") == "ok" else 0)
        sketch = "" if c.get("exact", True) else " <span class=muted>(sketch)</span>"
        out.append(
            f"<tr data-column='{_sort_key(c['column'])}' data-drifted='{'true' if c.get('drifted') else 'false'}'>"
            f"<th scope=row data-sort='{_sort_key(c['column'])}'>{e(str(c['column']))}</th>"
            f"<td data-sort='{_sort_key(c.get('kind', ''))}'>{e(str(c.get('kind', '')))}</td>"
            f"<td data-sort='{_sort_key(c.get('role', ''))}'>{e(str(c.get('role', '')))}</td>"
            f"<td data-sort='{_sort_key(c.get('method', ''))}'>{e(str(c.get('method', '')))}{sketch}</td>"
            f"<td data-sort='{_sort_key(_statistic(c))}'>{_statistic(c)}</td>"
            f"{_num_cell(p)}{_num_cell(d)}{_num_cell(c.get('threshold'))}"
            f"<td data-sort='{drifted}'>{_flag(c)}</td>{_num_cell(q.get('missing_rate'))}"
            f"<td class=num data-sort='{c.get('n_current', '')}'>{fmt(c.get('n_reference'))} / "
            f"{fmt(c.get('n_current'))}</td>"
            f"<td class=muted data-sort='{_sort_key(c.get('note') or '')}'>{e(c.get('note') or '')}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def verdict_list(c: dict[str, Any]) -> str:
    """Method, p-value or distance, threshold and flag of one column as a small ``<dl>``."""
    p, d = _pvalue_distance(c)
    items = [("method", html.escape(str(c.get("method", "")))), ("statistic", _statistic(c) or "—"),
             ("p-value", fmt(p)), ("distance", fmt(d)), ("threshold", fmt(c.get("threshold"))),
             ("drifted", _flag(c))]
    return "<dl>" + "".join(f"<dt>{k}</dt><dd data-field='{k}'>{v}</dd>" for k, v in items
                            if not (k in ("p-value", "distance") and v == "—")) + "</dl>"


def _stored_note(stored: dict[str, Any] | None) -> str:
    if not stored:
        return ""
    flag = "<span class=drift>drifted</span>" if stored["drifted"] else "no"
    if stored["matches"]:
        return f"<p class='muted stored' data-matches=true>the evaluation stored the same verdict ({flag})</p>"
    rows = stored.get("rows")
    version = stored.get("version")
    return (f"<p class='stored' data-matches=false>The evaluation stored value {fmt(stored['value'])} "
            f"(drifted: {flag}), computed on the {fmt(rows) if rows is not None else 'unknown number of'} rows it "
            f"was given; the numbers and histogram above are recomputed from the "
            f"{fmt(stored.get('log_rows'))} rows the prediction log holds for its window"
            f"{' and version ' + html.escape(str(version)) if version else ''}, which are other rows. Both compare "
            "the predictions with the training labels.</p>")


def _prediction_section(data: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> list[str]:
    e = html.escape
    parts = ["<section id=prediction-drift aria-labelledby=prediction-drift-h>"
             "<h2 id=prediction-drift-h>Prediction drift</h2>"]
    cards = []
    pred = data.get("prediction") or {}
    for key, title in (("outputs", "model outputs"), ("scores", "positive-class scores")):
        part = pred.get(key)
        if part:
            verdict = part["drift"]
            cards.append(
                f"<div class='card prediction' data-part='{key}'><h3>{title} "
                f"<span class=muted>({e(part['reference'])} vs {e(part['current'])})</span></h3>"
                f"{verdict_list(verdict)}{_stored_note(part.get('stored'))}"
                f"{histogram(part['distribution'], label=str(verdict.get('column') or key), names=('reference', 'current'))}"
                "</div>")
    scores = data.get("score_drift") or {}
    for c in scores.get("columns") or []:  # stored by the monitor: the served package's scores
        dist = (scores.get("distributions") or {}).get(c["column"])
        chart = histogram(dist, label=str(c["column"]), names=("reference scores", "")) if dist else ""
        cards.append(
            f"<div class='card prediction' data-part='score-drift' data-column='{e(str(c['column']), quote=True)}'>"
            f"<h3>{e(str(c['column']))} <span class=muted>(scores of {fmt(scores.get('n_reference'))} reference "
            f"rows vs {fmt(scores.get('n_current'))} window rows, by the served version "
            f"{e(str(scores.get('version')))})</span></h3>{verdict_list(c)}{chart}"
            "<p class=muted>The window's scores are not stored, only their verdict; the histogram shows the "
            "reference scores.</p></div>")
    for c in by_name.values():  # an ad hoc comparison's prediction column (`monitor drift --prediction`)
        if c.get("role") == "prediction" and c["column"] in data.get("distributions", {}):
            cards.append(f"<div class='card prediction' data-part='column'><h3>{e(c['column'])} "
                         f"<span class=muted>(prediction column)</span></h3>{verdict_list(c)}"
                         f"{histogram(data['distributions'][c['column']], label=c['column'])}</div>")
    if cards:
        parts.append(f"<div class=grid>{''.join(cards)}</div>")
    else:
        stored = (data.get("drift") or {}).get("prediction_drift")
        chosen = (data.get("evaluation") or {}).get("id")
        row = next((s for s in data.get("series") or [] if chosen is not None and s.get("id") == chosen), {})
        value = row.get("prediction_drift_value")
        said = f" (stored verdict: {_flag(stored)})" if stored else (
            f" (the evaluation stored prediction_drift_value {fmt(value)})" if value is not None else "")
        parts.append(f"<p class=muted>No prediction distribution in this report{said}: the evaluation holds none "
                     "and no prediction log was read for its window.</p>")
    parts.append("</section>")
    return parts


def render_html(data: dict[str, Any]) -> str:
    """A self-contained HTML page (inline CSS, SVG and a small sorting script; nothing
    fetched) of a report document."""
    e = html.escape
    drift = data.get("drift") or {}
    columns = list(drift.get("columns") or [])
    by_name = {c["column"]: c for c in columns}
    parts = ["<!doctype html><html lang=en><head><meta charset='utf-8'>"
             "<meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<title>{e(data['title'])}</title><style>{_CSS}</style></head><body><main>"
             f"<h1>{e(data['title'])}</h1>"]
    if drift:
        share = drift.get("drift_share")
        parts.append(
            f"<p class=verdict>reference <b>{e(str(drift.get('reference') or '—'))}</b> "
            f"({fmt(drift.get('n_reference'))} rows) vs current window ({fmt(drift.get('n_current'))} rows): "
            f"<b data-field=n_drifted>{fmt(drift.get('n_drifted'))}</b> of "
            f"<span data-field=n_features>{fmt(drift.get('n_features'))}</span> features drifted (share "
            f"<span data-field=drift_share>{fmt(share)}</span>, threshold {fmt(drift.get('drift_share_threshold'))}; "
            f"data-set drift {'<span class=drift>yes</span>' if drift.get('dataset_drift') else 'no'}).</p>")
    parts += _prediction_section(data, by_name)
    if columns:
        parts.append("<section aria-labelledby=drift-h><h2 id=drift-h>Drift per column</h2>"
                     "<p class=muted>Drifted columns first, strongest first; click a header to sort. A p-value "
                     "below its threshold, or a distance at or above it, is drift.</p>")
        parts.append(drift_table(columns, (drift.get("quality") or {}).get("columns", {})))
        parts.append("</section>")
    if data.get("distributions"):
        order = [c["column"] for c in ordered(columns)] + list(data["distributions"])
        seen: set[str] = set()
        parts.append("<section aria-labelledby=dist-h><h2 id=dist-h>Distributions</h2><p class=muted>Share of "
                     "rows per bin or category: grey, reference; blue, current window.</p><div class=grid>")
        for name in order:
            if name in seen or name not in data["distributions"]:
                continue
            seen.add(name)
            c = by_name.get(name)
            parts.append(f"<div class='card distribution' data-column='{e(name, quote=True)}'><h3>{e(name)}</h3>"
                         f"{verdict_list(c) if c else ''}{histogram(data['distributions'][name], label=name)}</div>")
        parts.append("</div></section>")
    series = data.get("series") or []
    if series:
        from conveyor.monitoring._report import series_keys

        parts.append("<section aria-labelledby=time-h><h2 id=time-h>Over time</h2><div class=grid>")
        x_label = "end of window (UTC)"
        for key in series_keys(series):
            points = [(s.get("window_end") or s["at"], s[key]) for s in series if isinstance(s.get(key), (int, float))]
            if points:
                offline = (data.get("offline") or {}).get(key)
                threshold = drift.get("drift_share_threshold") if key == "drift_share" else None
                parts.append(f"<div class='card over-time' data-metric='{e(key, quote=True)}'><h3>{e(key)}</h3>"
                             f"{line(points, label=key, y_label=key, baseline=offline, threshold=threshold, x_label=x_label)}</div>")
        parts.append("</div></section>")
    parts.append(f"</main><script>{_SORT_JS}</script></body></html>")
    return "".join(parts)
