"""The drift report's HTML, parsed back: real axes with tick values, reference-vs-current
bins whose shares add up, the statistic, p-value or distance, threshold and drifted flag as
numbers, drifted columns first, prediction drift, metrics over time — for a classifier
(numeric and categorical features, scores) and a regressor, from stored evaluations."""

from __future__ import annotations

import re
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

import conveyor.data
from conveyor.errors import InvalidInput
from conveyor.monitoring import MonitorConfig, MonitorHooks, Monitoring, MonitoringDefaults, compare, report_data
from conveyor.monitoring._report import drift_report_data, render_html

from fixtures.htmltree import parse

T0 = 1_790_000_000_000
HOUR = 3_600_000


def _number(text: str) -> float:
    text = text.strip().replace(",", "")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-12) + 1e-12


class Windows:
    """The monitor's prediction-log hook over frames kept in memory (keyed by window end)."""

    def __init__(self) -> None:
        self.frames: dict[int, pd.DataFrame] = {}

    def __call__(self, model: str, version: str | None, since: int, until: int) -> pd.DataFrame:
        return self.frames[until]


def _evaluate(tracker, config: MonitorConfig, windows: Windows, frames: list[pd.DataFrame]) -> list:
    monitoring = Monitoring(tracker, MonitoringDefaults(webhook_backoff=0.01), MonitorHooks())
    out = []
    for i, frame in enumerate(frames):
        until = T0 + (i + 1) * HOUR
        windows.frames[until] = frame
        out.append(monitoring.evaluate(config, current=frame, until_ms=until))
    monitoring.wait(10)
    return out


def _classifier_frames(make_frame, shift: float, seed: int) -> pd.DataFrame:
    frame = make_frame(n=1200, shift=shift, seed=seed)
    frame["tenure"] = np.random.default_rng(seed + 100).exponential(3.0, len(frame))  # never shifts
    p = 1 / (1 + np.exp(-(frame.age - 45) / 4))
    frame["prediction"] = (p > 0.5).astype(int)
    frame["score"] = p
    frame["label"] = frame.pop("churned")
    return frame


def _regressor_frames(shift: float, seed: int, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.normal(80 + 40 * shift, 20, n)
    city = rng.choice(["oslo", "bergen", "tromsø"], n, p=[0.5, 0.3, 0.2])
    price = 3 * size + rng.normal(0, 10, n)
    return pd.DataFrame({"size": size, "city": city, "price": price})


def _axes(svg) -> tuple[list[str], list[str]]:
    x = [t.find("text").text for t in svg.find("g", class_="x-axis").all("g", class_="tick")]
    y = [t.find("text").text for t in svg.find("g", class_="y-axis").all("g", class_="tick")]
    return x, y


def _check_histogram(card, kind: str) -> None:
    svg = card.find("svg")
    assert kind in svg.attrs["class"].split()
    x, y = _axes(svg)
    assert len(y) >= 3 and y[0] == "0" and all(t.endswith("%") for t in y[1:])
    shares_y = [_number(t) for t in y]
    assert shares_y == sorted(shares_y)
    ref = [float(r.attrs["data-share"]) for r in svg.all("rect", class_="ref") if "data-share" in r.attrs]
    cur = [float(r.attrs["data-share"]) for r in svg.all("rect", class_="cur") if "data-share" in r.attrs]
    assert len(ref) == len(cur) > 1
    assert max(ref + cur) <= shares_y[-1] + 1e-9  # the y axis covers every bar
    if kind == "numeric":
        assert abs(sum(ref) - 1) < 1e-3 and abs(sum(cur) - 1) < 1e-3
        values = [_number(t) for t in x]
        assert len(values) >= 3 and values == sorted(values)
        bins = [r.attrs["data-bin"] for r in svg.all("rect", class_="ref") if "data-bin" in r.attrs]
        lo, hi = float(bins[0].split("..")[0]), float(bins[-1].split("..")[1])
        assert lo <= values[0] + 1e-9 and values[-1] <= hi + 1e-9  # ticks lie on the binned range
    for bar in svg.find("g", class_="bars").all("rect", class_="cur"):
        assert bar.find("title").text.endswith("%")  # the share on hover
    labels = [t.text for t in svg.all("text", class_="axis-label")]
    assert "share of rows" in labels and card.attrs.get("data-column", labels[-1]) in labels


def _table(page):
    table = page.find("table", class_="drift-table")
    headers = [th.text for th in table.find("thead").all("th")]
    rows = table.find("tbody").all("tr")
    return headers, rows


def _cell(headers: list[str], row, name: str) -> str:
    cells = [c for c in row.children if not isinstance(c, str)]
    return cells[headers.index(name)].text


def _check_table_numbers(page, evaluation) -> list[str]:
    headers, rows = _table(page)
    order = [r.attrs["data-column"] for r in rows]
    flags = [r.attrs["data-drifted"] == "true" for r in rows]
    assert flags == sorted(flags, reverse=True), f"drifted columns not first: {order}"
    for row in rows:
        c = evaluation.drift.column(row.attrs["data-column"])
        assert _close(_number(_cell(headers, row, "threshold")), c.threshold)
        shown = _cell(headers, row, "p-value" if c.method in ("ks", "chisquare", "z") else "distance")
        assert _close(_number(shown), c.value), (c.column, shown, c.value)
        assert _cell(headers, row, "drifted") == ("drifted" if c.drifted else "no")
        assert _cell(headers, row, "method").startswith(c.method)
        for key, value in c.statistics.items():
            if key != "p_value" and isinstance(value, float):
                match = re.search(rf"{re.escape(key)} = (\S+)", _cell(headers, row, "statistic"))
                assert match and _close(_number(match.group(1).rstrip(",")), value)
    return order


def test_classifier_report_shows_axes_values_order_and_prediction_drift(tracker, server_side, make_frame,
                                                                        embedded_only):
    reference = make_frame(seed=1)
    reference["tenure"] = np.random.default_rng(7).exponential(3.0, len(reference))
    ref = conveyor.data.add(reference, name="train", tracker=server_side).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned", score="score",
                           rules=["drift_share > 0.3"])
    windows = Windows()
    evaluations = _evaluate(tracker, config, windows, [_classifier_frames(make_frame, s, 10 + i)
                                                      for i, s in enumerate((0.0, 0.4, 1.0))])
    newest = evaluations[-1]
    assert newest.drift.column("age").drifted and not newest.drift.column("tenure").drifted

    data = report_data(tracker, "churn", load_window=windows, prediction="prediction", score="score")
    page = parse(render_html(data))

    order = _check_table_numbers(page, newest)
    assert order.index("age") < order.index("tenure") and order.index("plan") < order.index("tenure")
    # cards follow the table's order, one per column, each with its own verdict numbers
    cards = page.all("div", class_="distribution")
    assert [c.attrs["data-column"] for c in cards] == order
    for card in cards:
        kind = "categorical" if card.attrs["data-column"] == "plan" else "numeric"
        if card.attrs["data-column"] == "churned":
            kind = card.find("svg").attrs["class"].split()[-1]  # 0/1 labels: counted values
        _check_histogram(card, kind)
        c = newest.drift.column(card.attrs["data-column"])
        assert card.find("dd", **{"data-field": "threshold"}).text == f"{c.threshold:.4g}"
    plan = next(c for c in cards if c.attrs["data-column"] == "plan")
    assert set(_axes(plan.find("svg"))[0]) == {"basic", "pro", "team"}

    # prediction drift: outputs vs training labels, scores vs the first window
    section = page.find("section", id="prediction-drift")
    outputs = section.find("div", **{"data-part": "outputs"})
    scores = section.find("div", **{"data-part": "scores"})
    stored = newest.metrics["prediction_drift_value"]
    shown = outputs.find("dd", **{"data-field": "p-value"}) if outputs.all("dd", **{"data-field": "p-value"}) \
        else outputs.find("dd", **{"data-field": "distance"})
    assert _close(_number(shown.text), stored)
    assert outputs.find("dd", **{"data-field": "drifted"}).text == ("drifted" if newest.metrics["prediction_drift"]
                                                                     else "no")
    assert outputs.find("p", class_="stored").attrs["data-matches"] == "true"  # the log holds what was evaluated
    _check_histogram(scores, "numeric")
    assert scores.find("dd", **{"data-field": "drifted"}).text == "drifted"  # the scores moved with age
    assert data["prediction"]["scores"]["drift"]["drifted"] is True

    # metrics over time: one point per evaluation, values as stored
    drift_share = page.find("div", **{"data-metric": "drift_share"})
    points = drift_share.all("circle", class_="point")
    assert [float(p.attrs["data-value"]) for p in points] == [e.metrics["drift_share"] for e in evaluations]
    assert drift_share.find("line", class_="threshold").attrs["data-value"] == "0.5"
    x, y = _axes(drift_share.find("svg"))
    assert len(x) >= 2 and all(re.fullmatch(r"\d\d:\d\d", t) for t in x) and len(y) >= 3


def test_regressor_report_from_stored_evaluations(tracker, server_side):
    ref = conveyor.data.add(_regressor_frames(0.0, 1, n=3000), name="homes", tracker=server_side).ref
    config = MonitorConfig(name="price-watch", model="price", reference=ref, target="price",
                           rules=["drift_share > 0.4"])
    frames = []
    for i, shift in enumerate((0.0, 1.0)):
        frame = _regressor_frames(shift, 20 + i)
        frame["prediction"] = 3 * frame["size"]
        frame["label"] = frame.pop("price")
        frames.append(frame)
    windows = Windows()
    evaluations = _evaluate(tracker, config, windows, frames)
    newest = evaluations[-1]
    assert newest.drift.column("size").drifted and not newest.drift.column("city").drifted

    data = report_data(tracker, "price", load_window=windows)
    page = parse(render_html(data))
    order = _check_table_numbers(page, newest)
    assert order.index("size") < order.index("city")
    for card in page.all("div", class_="distribution"):
        _check_histogram(card, "categorical" if card.attrs["data-column"] == "city" else "numeric")
    if server_side is tracker:  # embedded: the test's reader serves the evaluated windows as the log
        outputs = page.find("section", id="prediction-drift").find("div", **{"data-part": "outputs"})
        _check_histogram(outputs, "numeric")
        assert outputs.find("dd", **{"data-field": "drifted"}).text == "drifted"  # predictions follow size
        assert not page.find("section", id="prediction-drift").all("div", **{"data-part": "scores"})  # none logged
    else:  # remote: the server reads its own prediction log, where nothing was logged for "price"
        assert "no prediction log was read" in page.find("section", id="prediction-drift").text
    mae = page.find("div", **{"data-metric": "mae"})
    assert [float(p.attrs["data-value"]) for p in mae.all("circle", class_="point")] == \
        pytest.approx([e.metrics["mae"] for e in evaluations])


def test_a_log_that_differs_from_the_evaluated_window_is_said(tracker, server_side, make_frame, embedded_only):
    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned")
    windows = Windows()
    (evaluation,) = _evaluate(tracker, config, windows, [_classifier_frames(make_frame, 0.0, 3)])
    logged = _classifier_frames(make_frame, 1.0, 4)  # the log of that span holds other rows
    page = parse(render_html(report_data(tracker, "churn", load_window=lambda *a: logged)))
    note = page.find("div", **{"data-part": "outputs"}).find("p", class_="stored")
    assert note.attrs["data-matches"] == "false"
    assert f"{evaluation.metrics['prediction_drift_value']:.4g}" in note.text


def test_without_a_prediction_log_the_report_says_so(tracker, server_side, make_frame, embedded_only):
    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned")
    frame = _classifier_frames(make_frame, 0.0, 3).drop(columns=["tenure"])
    _evaluate(tracker, config, Windows(), [frame])

    def unreadable(*args):
        raise OSError("no log")

    page = render_html(report_data(tracker, "churn", load_window=unreadable))
    assert "no prediction log was read" in parse(page).find("section", id="prediction-drift").text


def test_ad_hoc_comparison_escapes_names_and_shows_the_prediction_column():
    rng = np.random.default_rng(0)
    evil = "<img src=x onerror=alert(1)>"
    ref = pd.DataFrame({evil: rng.normal(0, 1, 500), "kind": rng.choice(["a", "<i>x</i>"], 500),
                        "pred": rng.normal(0, 1, 500)})
    cur = pd.DataFrame({evil: rng.normal(2, 1, 400), "kind": rng.choice(["a", "<i>x</i>"], 400),
                        "pred": rng.normal(1, 1, 400)})
    report = compare(ref, cur, prediction="pred")
    page = render_html(drift_report_data(report, title="<script>alert(1)</script>"))
    assert "<img" not in page and "<script>alert" not in page and "<i>" not in page
    tree = parse(page)
    assert tree.find("h1").text == "<script>alert(1)</script>"
    _, rows = _table(tree)
    assert rows[0].attrs["data-column"] == evil and rows[0].attrs["data-drifted"] == "true"
    kind = next(c for c in tree.all("div", class_="distribution") if c.attrs["data-column"] == "kind")
    assert set(_axes(kind.find("svg"))[0]) == {"a", "<i>x</i>"}
    pred = tree.find("section", id="prediction-drift").find("div", **{"data-part": "column"})
    assert pred.find("dd", **{"data-field": "drifted"}).text == "drifted"


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 0.1225), (-5.87, 2.87), (400.0, 400.0), (1e-6, 3e-6), (12.0, 98765.0)])
def test_ticks_are_round_and_cover_the_range(lo, hi):
    from conveyor.monitoring._charts import inner_ticks, nice_ticks

    ticks = nice_ticks(lo, hi, 4)
    assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) >= 3
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1  # evenly spaced
    (step,) = steps
    assert f"{step / 10 ** np.floor(np.log10(step)):.6g}" in {"1", "2", "2.5", "5"}
    inside = inner_ticks(lo, hi, 5)
    assert all(lo <= t <= hi for t in inside) and (len(inside) >= 2 or lo == hi)


def test_prediction_and_score_drift_metrics_an_evaluation_adds_are_charted(tracker, server_side, make_frame):
    """Metrics named prediction_drift…/score_drift… (e.g. drift of served scores) appear over
    time without the report knowing them in advance; flags (booleans) do not."""
    from conveyor.store import MonitoringRepo

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned")
    _evaluate(tracker, config, Windows(), [_classifier_frames(make_frame, 0.0, 3)])
    with server_side.store.write() as conn:
        MonitoringRepo().add_evaluation(conn, monitor="churn-watch", model="churn", model_version=None,
                                        window_start=T0, window_end=T0 + 3 * HOUR, status="ok",
                                        metrics={"score_drift_value": 0.031, "score_drift": True, "rows": 5.0},
                                        rules=[], report_digest=None, error=None)
    page = parse(render_html(report_data(tracker, "churn")))
    chart = page.find("div", **{"data-metric": "score_drift_value"})
    assert [float(p.attrs["data-value"]) for p in chart.all("circle", class_="point")] == [0.031]
    assert not page.all("div", **{"data-metric": "score_drift"})


def test_stored_score_drift_is_shown_with_the_reference_scores(tracker, server_side, make_frame):
    """An evaluation that carries ``score_drift_report`` (the monitor's drift of the served
    package's scores) gets a card per score column: its numbers, and the stored reference
    scores as a histogram with axes."""
    from conveyor.monitoring import store_summary, summarize
    from conveyor.store import MonitoringRepo

    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=server_side).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned")
    _evaluate(tracker, config, Windows(), [_classifier_frames(make_frame, 0.0, 3)])
    reference_scores = pd.DataFrame({"score:1": np.random.default_rng(0).beta(2, 5, 2000)})
    store_summary(server_side, f"scores:churn/4:{ref}", summarize(reference_scores))
    verdict = asdict(compare(reference_scores, pd.DataFrame({"score:1": np.random.default_rng(1).beta(5, 2, 800)}))
                     .column("score:1"))
    report = {"kind": "probabilities", "version": "4", "reference": ref, "n_reference": 2000, "n_current": 800,
              "columns": [{k: v for k, v in verdict.items() if k != "role"}]}
    with server_side.store.write() as conn:
        MonitoringRepo().add_evaluation(conn, monitor="churn-watch", model="churn", model_version="4",
                                        window_start=T0, window_end=T0 + 3 * HOUR, status="ok",
                                        metrics={"rows": 800.0, "score_drift": 1.0,
                                                 "score_drift_value": verdict["value"],
                                                 "drift_report": {"columns": [], "reference": ref},
                                                 "score_drift_report": report},
                                        rules=[], report_digest=None, error=None)
    page = parse(render_html(report_data(tracker, "churn")))
    card = page.find("div", **{"data-part": "score-drift"})
    assert card.attrs["data-column"] == "score:1"
    shown = card.all("dd", **{"data-field": "distance"}) or card.all("dd", **{"data-field": "p-value"})
    assert _close(_number(shown[0].text), verdict["value"])
    assert card.find("dd", **{"data-field": "drifted"}).text == "drifted"
    svg = card.find("svg")
    x, y = _axes(svg)
    assert len(x) >= 3 and len(y) >= 3
    shares = [float(r.attrs["data-share"]) for r in svg.find("g", class_="bars").all("rect")]
    assert abs(sum(shares) - 1) < 1e-3  # the reference scores' histogram


def test_counted_numbers_are_drawn_in_numeric_order_or_binned():
    """A numeric column with few distinct values (up to 20) is summarised by counts: up to 15 values are
    bars in numeric order (with short number labels); more are put on numeric bins."""
    from conveyor.monitoring import summarize
    from conveyor.monitoring._report import distribution

    rng = np.random.default_rng(0)
    few = summarize(pd.DataFrame({"calls": rng.integers(0, 12, 500).astype(float)}))["calls"]
    dist = distribution(few, few)
    assert dist["kind"] == "categorical" and [float(k) for k in dist["categories"]] == sorted(
        float(k) for k in dist["categories"])
    thirtieths = summarize(pd.DataFrame({"p": rng.integers(0, 20, 500) / 19}))["p"]  # 20 values: counted
    assert thirtieths.counts is not None  # counted, not sketched
    binned = distribution(thirtieths, thirtieths)
    assert binned["kind"] == "numeric" and len(binned["edges"]) == len(binned["reference"]) + 1
    assert abs(sum(binned["reference"]) - 1) < 1e-6
    page = parse(render_html({"title": "t", "distributions": {"p": binned, "calls": dist}}))
    labels = [t.find("text").text for t in page.find("div", **{"data-column": "calls"}).find("g", class_="x-axis")
              .all("g", class_="tick")]
    assert labels == [str(i) for i in range(12)]


class Log:
    """A prediction log in memory: the rows whose ``timestamp`` is in ``[since, until]``, as
    ``read_prediction_log`` answers for a window."""

    def __init__(self) -> None:
        self.frame = pd.DataFrame()

    def add(self, frame: pd.DataFrame, at: int) -> None:
        self.frame = pd.concat([self.frame, frame.assign(timestamp=at)], ignore_index=True)

    def __call__(self, model: str, version: str | None, since: int, until: int) -> pd.DataFrame:
        chosen = self.frame[(self.frame["timestamp"] >= since) & (self.frame["timestamp"] <= until)]
        return chosen.reset_index(drop=True)


def test_a_batch_evaluated_with_its_own_start_is_what_the_report_recomputes(tracker, make_frame, embedded_only):
    """The quickstart's loop: two batches in one hour, each evaluated alone. Narrowing the
    window inside the log reader stored the hour while the batch was compared, so the report
    (re-reading the stored window) disagreed with the stored p-value; ``since_ms`` stores the
    window that was read, and the two agree."""
    ref = conveyor.data.add(make_frame(seed=1), name="train", tracker=tracker).ref
    config = MonitorConfig(name="churn-watch", model="churn", reference=ref, target="churned", window="1h")
    log = Log()
    monitoring = Monitoring(tracker, MonitoringDefaults(webhook_backoff=0.01), MonitorHooks(load_window=log))
    log.add(_classifier_frames(make_frame, 0.0, 5), T0 + 60_000)
    first = monitoring.evaluate(config, since_ms=T0, until_ms=T0 + 120_000)
    log.add(_classifier_frames(make_frame, 1.0, 6), T0 + 180_000)  # the shifted batch
    second = monitoring.evaluate(config, since_ms=T0 + 150_000, until_ms=T0 + 240_000)
    monitoring.wait(10)
    assert second.metrics["rows"] == 1200 and first.metrics["rows"] == 1200  # each batch alone

    data = report_data(tracker, "churn", load_window=log)
    assert data["evaluation"]["id"] == second.id
    assert (data["evaluation"]["window_start"], data["evaluation"]["window_end"]) == (T0 + 150_000, T0 + 240_000)
    stored = data["prediction"]["outputs"]["stored"]
    assert stored["matches"] is True and stored["rows"] == stored["log_rows"] == 1200
    assert data["prediction"]["outputs"]["drift"]["value"] == pytest.approx(second.metrics["prediction_drift_value"])
    # the whole hour holds both batches: a different comparison, and the report says so
    hour = report_data(tracker, "churn", load_window=lambda m, v, s, u: log(m, v, T0, u))
    other = hour["prediction"]["outputs"]["stored"]
    assert other["matches"] is False and other["log_rows"] == 2400
    note = parse(render_html(hour)).find("div", **{"data-part": "outputs"}).find("p", class_="stored").text
    assert "1200 rows it was given" in note and "2400 rows the prediction log holds" in note
    # `conveyor monitor report`'s line says the same
    from conveyor.monitoring._report import prediction_summary

    assert "on the 1200 rows" in prediction_summary(data) and "the evaluation stored the same" in prediction_summary(data)
    assert "on the 2400 rows" in prediction_summary(hour) and "computed on the 1200 rows it was given" in \
        prediction_summary(hour)
    with pytest.raises(InvalidInput, match="since_ms"):
        monitoring.evaluate(config, since_ms=T0 + 10, until_ms=T0)
