"""Inline SVG charts with real axes: histograms (reference vs current) and lines over time.

Drawn here as strings so a report stays one self-contained file (no script library, no
network). Every chart has an x and a y axis with ticks and tick values, axis titles, a
legend, a ``<title>`` per bar or point (shown on hover and read by screen readers) and
``data-*`` attributes holding the exact numbers, so tests and tools can read the values
back. Every text that comes from data is escaped.

Example::

    svg = histogram({"kind": "numeric", "edges": [0, 1, 2], "reference": [.5, .5], "current": [.2, .8]},
                    label="age")
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Any

MARGIN = {"left": 48, "right": 12, "top": 22, "bottom": 44}
REF_COLOR, CUR_COLOR = "#6b6b6b", "#1565c0"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10ᵏ apart) from at or below ``lo`` to at or above ``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:  # one value: centre it
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [round(i * step, 12) for i in range(first, last + 1)]
    return ticks


def inner_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values inside [lo, hi], at least three when the range allows."""
    eps = 1e-9 * ((hi - lo) or 1.0)
    ticks: list[float] = []
    for wanted in (count, count * 2, count * 4):
        ticks = [t for t in nice_ticks(lo, hi, wanted) if lo - eps <= t <= hi + eps]
        if len(ticks) >= 3:
            break
    return ticks


def fmt(value: Any, digits: int = 4) -> str:
    """A number as short text (``—`` for none/NaN); other values as their text, escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.{max(digits - 1, 1)}e}"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def tick_text(value: float) -> str:
    """A tick value, short: 25k, 1.5M, 0.25, 1e-05."""
    v = abs(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if v >= size:
            return f"{value / size:.3g}{suffix}" if suffix != "k" else f"{value / 1e3:.3g}k"
    if v and v < 1e-3:
        return f"{value:.0e}"
    return f"{value:.4g}"


def _open(width: int, height: int, title: str, cls: str) -> list[str]:
    e = html.escape
    return [f"<svg class='chart {cls}' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"role='img' aria-label='{e(title, quote=True)}'>",
            f"<title>{e(title)}</title>"]


def _y_axis(ticks: list[float], y: Any, x0: float, x1: float, label: str, fmt_tick: Any = None) -> list[str]:
    fmt_tick = fmt_tick or tick_text
    out = ["<g class='axis y-axis'>",
           f"<line class='domain' x1='{x0}' y1='{y(ticks[0]):.1f}' x2='{x0}' y2='{y(ticks[-1]):.1f}'/>"]
    for t in ticks:
        out.append(f"<g class='tick' data-value='{t:g}'><line class='grid' x1='{x0}' x2='{x1}' y1='{y(t):.1f}' "
                   f"y2='{y(t):.1f}'/><text x='{x0 - 4}' y='{y(t) + 3:.1f}' text-anchor='end'>{fmt_tick(t)}</text></g>")
    mid = (y(ticks[0]) + y(ticks[-1])) / 2
    out.append(f"<text class='axis-label' transform='translate(11 {mid:.1f}) rotate(-90)' "
               f"text-anchor='middle'>{html.escape(label)}</text></g>")
    return out


def _legend(x: float, items: list[tuple[str, str]]) -> list[str]:
    out = ["<g class='chart-legend'>"]
    for name, cls in items:
        out.append(f"<rect class='{cls}' x='{x:.1f}' y='6' width='10' height='10'/>"
                   f"<text x='{x + 14:.1f}' y='15'>{html.escape(name)}</text>")
        x += 14 + 7 * len(name) + 10
    out.append("</g>")
    return out


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def histogram(dist: dict[str, Any], *, label: str, width: int = 340, height: int = 210,
              names: tuple[str, str] = ("reference", "current")) -> str:
    """Reference vs current shares of one column: overlaid bins (numeric, from ``edges``) or
    side-by-side bars per category, with the share of rows on the y axis. With
    ``dist["current"] = None`` only the reference is drawn (one version's profile)."""
    single = dist.get("current") is None
    ref, cur = list(dist.get("reference") or []), list(dist.get("current") or [])
    series = (("cur", names[0], ref),) if single else (("ref", names[0], ref), ("cur", names[1], cur))
    e = html.escape
    m = MARGIN
    rotated = dist.get("kind", "numeric") != "numeric" and max(len(ref), len(cur)) > 5  # slanted tick labels
    x0, x1, y0, y1 = m["left"], width - m["right"], height - m["bottom"] - (16 if rotated else 0), m["top"]
    top = max([*ref, *cur, 0.0]) or 1.0
    ticks = nice_ticks(0.0, top, 4)
    y_max = ticks[-1]

    def y(v: float) -> float:
        return y0 - (v / y_max) * (y0 - y1)

    kind = dist.get("kind", "numeric")
    out = _open(width, height, f"{label}: {names[0]} vs {names[1]} distribution", f"histogram {kind}")
    out += _y_axis(ticks, y, x0, x1, "share of rows", lambda t: _pct(t) if t else "0")
    out.append("<g class='bars'>")
    n = max(len(ref), len(cur), 1)
    if kind == "numeric":
        edges = list(dist["edges"])
        lo, hi = edges[0], edges[-1]
        span = hi - lo or 1.0

        def x(v: float) -> float:
            return x0 + (v - lo) / span * (x1 - x0)

        for i in range(n):
            a, b = edges[i], edges[i + 1]
            for cls, name, shares in series:
                v = shares[i] if i < len(shares) else 0.0
                out.append(f"<rect class='{cls}' x='{x(a):.1f}'' y='{y(v):.1f}' width='{max(x(b) - x(a), 0.5):.1f}' "
                           f"height='{y0 - y(v):.1f}' data-bin='{a:g}..{b:g}' data-share='{v:g}'>"
                           f"<title>{e(name)} [{fmt(a)}, {fmt(b)}): {_pct(v)}</title></rect>")
        out.append("</g><g class='axis x-axis'>"
                   f"<line class='domain' x1='{x0}' y1='{y0}' x2='{x1}' y2='{y0}'/>")
        for t in inner_ticks(lo, hi, 5):
            out.append(f"<g class='tick' data-value='{t:g}'><line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{y0}' "
                       f"y2='{y0 + 4}'/><text x='{x(t):.1f}' y='{y0 + 15}' text-anchor='middle'>{tick_text(t)}</text></g>")
    else:
        cats = [str(c) for c in dist.get("categories", [])]
        slot = (x1 - x0) / n
        for i, cat in enumerate(cats):
            bar = slot * 0.8 / len(series)
            for j, (cls, name, shares) in enumerate(series):
                v = shares[i] if i < len(shares) else 0.0
                bx = x0 + i * slot + slot * 0.1 + j * bar
                out.append(f"<rect class='{cls}' x='{bx:.1f}' y='{y(v):.1f}' width='{bar:.1f}' "
                           f"height='{y0 - y(v):.1f}' data-category='{e(cat, quote=True)}' data-share='{v:g}'>"
                           f"<title>{e(name)} {e(cat)}: {_pct(v)}</title></rect>")
        out.append("</g><g class='axis x-axis'>"
                   f"<line class='domain' x1='{x0}' y1='{y0}' x2='{x1}' y2='{y0}'/>")
        for i, cat in enumerate(cats):
            cx = x0 + (i + 0.5) * slot
            short = _category_text(cat)
            anchor = "middle" if n <= 5 else "end"
            rotate = "" if n <= 5 else f" transform='rotate(-35 {cx:.1f} {y0 + 12})'"
            out.append(f"<g class='tick' data-value='{e(cat, quote=True)}'><line x1='{cx:.1f}' x2='{cx:.1f}' "
                       f"y1='{y0}' y2='{y0 + 4}'/><text x='{cx:.1f}' y='{y0 + 14}' text-anchor='{anchor}'{rotate}>"
                       f"{e(short)}</text></g>")
    out.append(f"<text class='axis-label' x='{(x0 + x1) / 2:.1f}' y='{height - 4}' text-anchor='middle'>"
               f"{e(label)}</text></g>")
    out += _legend(x0 + 4, [(name, cls) for cls, name, _ in series])
    out.append("</svg>")
    return "".join(out)


def _category_text(cat: str) -> str:
    """A category as a tick label: numbers shortened (0.0333333 → 0.0333), long text cut."""
    try:
        number = float(cat)
    except ValueError:
        return cat if len(cat) <= 10 else cat[:9] + "…"
    return tick_text(number) if math.isfinite(number) else cat


def _time_label(ms: float, span_ms: float) -> str:
    at = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if span_ms < 2 * 86_400_000:
        return at.strftime("%H:%M:%S") if span_ms < 600_000 else at.strftime("%H:%M")
    return at.strftime("%m-%d %H:%M") if span_ms < 30 * 86_400_000 else at.strftime("%Y-%m-%d")


def line(points: list[tuple[float, float]], *, label: str, y_label: str, width: int = 360, height: int = 210,
         baseline: float | None = None, baseline_name: str = "offline", threshold: float | None = None,
         time_axis: bool = True, x_label: str = "time (UTC)") -> str:
    """A series over time (x: ms since the epoch) with point markers, an optional dashed
    ``baseline`` (e.g. the offline metric) and a dotted ``threshold``."""
    e = html.escape
    m = MARGIN
    x0, x1, y0, y1 = m["left"] + 8, width - m["right"], height - m["bottom"], m["top"]
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] + [v for v in (baseline, threshold) if v is not None]
    lo_x, hi_x = min(xs), max(xs)
    if hi_x <= lo_x:
        lo_x, hi_x = lo_x - 1, hi_x + 1
    yt = nice_ticks(min(ys or [0.0]), max(ys or [1.0]), 4)
    lo_y, hi_y = yt[0], yt[-1] if yt[-1] > yt[0] else yt[0] + 1

    def x(v: float) -> float:
        return x0 + (v - lo_x) / (hi_x - lo_x) * (x1 - x0)

    def y(v: float) -> float:
        return y0 - (v - lo_y) / (hi_y - lo_y) * (y0 - y1)

    out = _open(width, height, f"{label} over time", "line")
    out += _y_axis(yt, y, x0, x1, y_label)
    out.append(f"<g class='axis x-axis'><line class='domain' x1='{x0}' y1='{y0}' x2='{x1}' y2='{y0}'/>")
    span = hi_x - lo_x
    if time_axis:
        count = min(4, max(len(set(xs)), 2))
        ticks = [lo_x + span * i / (count - 1) for i in range(count)]
        texts = [_time_label(t, span) for t in ticks]
    else:
        ticks = inner_ticks(lo_x, hi_x, 5)
        texts = [tick_text(t) for t in ticks]
    for t, text in zip(ticks, texts):
        anchor = "start" if t == ticks[0] and time_axis else "end" if t == ticks[-1] and time_axis else "middle"
        out.append(f"<g class='tick' data-value='{t:g}'><line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{y0}' "
                   f"y2='{y0 + 4}'/><text x='{x(t):.1f}' y='{y0 + 15}' text-anchor='{anchor}'>{e(text)}</text></g>")
    out.append(f"<text class='axis-label' x='{(x0 + x1) / 2:.1f}' y='{height - 4}' text-anchor='middle'>"
               f"{e(x_label)}</text></g>")
    legend = [(label, "cur")]
    if baseline is not None:
        out.append(f"<line class='baseline' x1='{x0}' x2='{x1}' y1='{y(baseline):.1f}' y2='{y(baseline):.1f}' "
                   f"data-value='{baseline:g}'><title>{e(baseline_name)}: {fmt(baseline)}</title></line>")
        legend.append((f"{baseline_name} {fmt(baseline)}", "ref"))
    if threshold is not None:
        out.append(f"<line class='threshold' x1='{x0}' x2='{x1}' y1='{y(threshold):.1f}' y2='{y(threshold):.1f}' "
                   f"data-value='{threshold:g}'><title>threshold: {fmt(threshold)}</title></line>")
    if points:
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
        out.append(f"<polyline class='series' points='{path}'/>")
        out.append("<g class='points'>")
        for a, b in points:
            when = _time_label(a, 0) if time_axis else fmt(a)
            out.append(f"<circle class='point' cx='{x(a):.1f}' cy='{y(b):.1f}' r='3' data-x='{a:g}' "
                       f"data-value='{float(b)!r}'><title>{e(when)}: {fmt(b)}</title></circle>")
        out.append("</g>")
    out += _legend(x0 + 4, legend)
    out.append("</svg>")
    return "".join(out)


#: Styles for the charts above (the report inlines them; the UI links its own copy).
CSS = (
    ".chart{font:11px system-ui,sans-serif;overflow:visible}.chart text{fill:#333}"
    ".chart .domain,.chart .tick line{stroke:#555}.chart .grid{stroke:#e3e3e3}"
    f".chart .ref{{fill:{REF_COLOR};fill-opacity:.45}}.chart .cur{{fill:{CUR_COLOR};fill-opacity:.55}}"
    ".chart .axis-label{font-weight:600}"
    f".chart .series{{fill:none;stroke:{CUR_COLOR};stroke-width:2}}.chart .point{{fill:{CUR_COLOR}}}"
    f".chart .baseline{{stroke:{REF_COLOR};stroke-dasharray:5 3}}.chart .threshold{{stroke:#b00020;"
    "stroke-dasharray:2 2}"
)
