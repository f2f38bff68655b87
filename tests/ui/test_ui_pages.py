"""The data set, pipeline, model and monitoring pages in Chromium, on a project made by the
quickstart (two data set versions, cached pipeline runs, a gated classifier whose
champion alias a gate moved and whose weaker challenger it refused, served predictions
with feedback, monitor evaluations with an alert and the retraining it triggered) plus a
gated regressor registered here (and named with HTML where the registry allows it).

Each test clicks through its pages, asserts what they show against the stores, and saves
screenshots (``pages-*.png``); the ``page`` fixture fails a test on any console error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.browser import LiveServer, require_chromium, shot

pytestmark = pytest.mark.slow  # the quickstart runs the whole loop first (about two minutes)

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'


@dataclass
class Loop:
    root: Path
    tracker: Any
    server: LiveServer


def _regressor(tracker: Any) -> None:
    """house-price: a ridge (v1, champion by its gate) then a forest the gate compares with it
    (v2: a paired bootstrap of rmse, so the timeline has a confidence interval to draw)."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    import conveyor.models
    from conveyor.gates import define_gate, evaluate, promote
    from conveyor.registry import Registry

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
    holdout = X_test.assign(target=y_test)
    registry = Registry(tracker)
    gate = define_gate("price", model="house-price", task="regression", label="target", metrics=["r2 >= 0.2"],
                       compare={"metric": "rmse", "margin": 10.0, "resamples": 300})
    for version, model in ((1, Ridge(alpha=1.0)), (2, RandomForestRegressor(n_estimators=40, random_state=0))):
        run = tracker.create_run("house-price", name=f"price-v{version}")
        model.fit(X_train, y_train)
        tracker.log_metric(run.id, "r2", float(model.score(X_test, y_test)))
        conveyor.models.log(model, "model", input_example=X_train.head(3), run_id=run.id, tracker=tracker)
        tracker.end_run(run.id)
        registry.register(f"runs:/{run.id}/model", "house-price", description=f"{type(model).__name__} {XSS}")
        evaluate(gate, f"models:/house-price/{version}", holdout, registry=registry)
        promote("house-price", version, registry=registry, reason=f"gate passed; note {XSS}")


@pytest.fixture(scope="session")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    require_chromium()  # before two minutes of quickstart
    from conveyor.server import create_app
    from conveyor.settings import Settings
    from conveyor.tracking import Tracker

    where = tmp_path_factory.mktemp("loop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run([sys.executable, "-m", "conveyor", "quickstart", "--folder", "qs"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    root = where / "qs"
    tracker = Tracker.from_settings(Settings.load(root, env={}), create=False)
    _regressor(tracker)
    server = LiveServer(create_app(tracker))
    yield Loop(root, tracker, server)
    server.stop()
    tracker.close()


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _axes_ok(figure: Any) -> None:
    """A chart inside ``figure`` has ticks with values on both axes."""
    svg = figure.locator("svg.chart").first
    assert svg.locator("g.x-axis g.tick text").count() >= 2
    y = svg.locator("g.y-axis g.tick text").all_text_contents()
    assert len(y) >= 2 and all(t.strip() for t in y)


def test_data_set_pages(page: Any, loop: Loop) -> None:
    from conveyor.data import validate, versions

    base = loop.server.url
    page.goto(base + "/datasets")
    row = page.locator("#datasets tbody tr[data-name='churn-train']")
    assert row.locator("td").first.inner_text() == "2"  # the latest version
    shot(page, "pages-datasets")
    row.locator("th a").click()
    assert page.url == base + "/datasets/churn-train"
    assert _texts(page, "#versions tbody th") == ["2", "1"]
    page.locator("#versions tbody tr[data-version='2'] th a").click()
    assert page.url.endswith("/datasets/churn-train/2")
    stored = versions("churn-train", tracker=loop.tracker)[-1]
    assert _texts(page, "#schema tbody th") == list(stored.profile["columns"])
    assert page.locator("[data-field=rows]").inner_text() == str(stored.profile["rows"])
    anomalies = validate("churn-train@2", against="churn-train@1", tracker=loop.tracker)
    shown = page.locator("#anomalies tbody tr")
    assert shown.count() == len(anomalies) > 0
    assert sorted(_texts(page, "#anomalies tbody td:nth-child(3)")) == sorted(a.kind for a in anomalies)
    figures = page.locator("figure.histogram")
    assert figures.count() == len(stored.profile["columns"])
    for i in range(figures.count()):
        _axes_ok(figures.nth(i))
        assert figures.nth(i).locator(".chart-legend text").all_text_contents() == ["v1", "v2"]
    shot(page, "pages-dataset-version")

    page.goto(base + "/datasets/churn-train")
    page.select_option("#diff-a", "1")
    page.select_option("#diff-b", "2")
    page.get_by_role("button", name="Compare").click()
    assert page.url.endswith("/datasets/churn-train/diff?a=1&b=2")
    from conveyor.data import diff

    result = diff("churn-train@1", "churn-train@2", tracker=loop.tracker)
    assert page.locator("[data-field=rows]").inner_text() == f"{result.rows[0]} → {result.rows[1]}"
    assert page.locator("#changed tbody tr").count() == sum(len(s) for s in result.changed_columns.values())
    shot(page, "pages-dataset-diff")

    # the versions table sorts by a header click (keyboard-reachable buttons)
    page.goto(base + "/datasets/churn-train")
    header = page.locator("#versions thead th").first
    header.locator("button").focus()
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "ascending"
    assert _texts(page, "#versions tbody th") == ["1", "2"]


def test_pipeline_pages_draw_the_dag_with_status_cache_and_lineage(page: Any, loop: Loop) -> None:
    from conveyor.store import PipelineRepo

    base = loop.server.url
    repo = PipelineRepo()
    with loop.tracker.store.read() as conn:
        records = repo.list_runs(conn, None, 100)
        execs = {r.run_id: repo.executions_of(conn, r.run_id) for r in records}
    cached_run = next(r for r in records if execs[r.run_id] and all(e.cached for e in execs[r.run_id]))
    fresh_run = next(r for r in records if execs[r.run_id] and not any(e.cached for e in execs[r.run_id])
                     and r.pipeline == cached_run.pipeline)

    page.goto(base + "/pipelines")
    assert page.locator("#pipeline-runs tbody tr").count() == len(records)
    cells = page.locator(f"#pipeline-runs tr[data-run='{cached_run.run_id}'] td")
    assert cells.nth(5).inner_text() == str(len(execs[cached_run.run_id]))  # every step from the cache
    shot(page, "pages-pipelines")

    page.locator(f"#pipeline-runs tr[data-run='{fresh_run.run_id}'] th a").click()
    nodes = page.locator("#dag svg g.node")
    steps = {e.step: e for e in execs[fresh_run.run_id]}
    assert nodes.count() == len(fresh_run.dag["steps"])
    for step, e in steps.items():
        node = page.locator(f"#dag g.node[data-node='{step}']")
        assert node.get_attribute("data-status") == e.status == "FINISHED"
        assert node.get_attribute("data-cache") == "miss"
        card = page.locator(f"section.step-card[data-step='{step}']")
        assert card.locator("[data-field=cache]").inner_text() == "cache miss"
        assert card.locator("[data-field=duration]").inner_text().endswith(("s", "min"))
        assert set(e.outputs) <= {t.split(":")[0] for t in card.locator("[data-field=outputs] .badge").all_inner_texts()}
    assert page.locator("#dag path.edge").count() >= len(steps)
    shot(page, "pages-pipeline-run")
    # a node is a link to its step
    step = next(iter(steps))
    page.locator(f"#dag a:has(g.node[data-node='{step}'])").click()
    assert page.url.endswith(f"#step-{step}")

    page.goto(f"{base}/pipelines/runs/{cached_run.run_id}")
    hits = page.locator("#dag g.node[data-cache='hit']")
    assert hits.count() == len(execs[cached_run.run_id])
    assert page.locator("#dag g.node.status-cached").count() == hits.count()
    shot(page, "pages-pipeline-run-cached")

    # lineage: from the run, through the model it registered, to where the alias points
    page.get_by_role("link", name="data → runs → models → deployments").click()
    assert "/lineage?ref=runs" in page.url
    kinds = set(page.locator("#lineage g.node").evaluate_all("ns => ns.map(n => n.dataset.kind)"))
    assert "run" in kinds and "step" in kinds or "dataset_version" in kinds
    shot(page, "pages-lineage-run")
    page.goto(base + "/lineage?ref=" + "models:/breast-cancer/1")
    kinds = page.locator("#lineage g.node").evaluate_all("ns => ns.map(n => n.dataset.kind)")
    assert {"dataset_version", "run", "model_version", "alias"} <= set(kinds)
    page.locator("#lineage a:has(g.node[data-kind='dataset_version'])").first.click()
    assert "/datasets/breast-cancer/1" in page.url
    assert page.locator("h1").inner_text() == "data:/breast-cancer@1"


def test_model_pages_show_the_alias_timeline_with_gate_evidence(page: Any, loop: Loop) -> None:
    from conveyor.gates._evaluate import evaluations
    from conveyor.registry import Registry

    base = loop.server.url
    registry = Registry(loop.tracker)
    page.goto(base + "/models")
    names = _texts(page, "#models tbody th")
    assert {"breast-cancer", "house-price", "churn-loop"} <= set(names)
    shot(page, "pages-models")

    # a regressor: champion moved 1 → 2 by its gate, the evidence a bootstrap CI of rmse
    page.locator("#models tr[data-model='house-price'] th a").click()
    assert page.locator("#alias-table tr[data-alias='champion'] td").inner_text() == "version 2"
    assert XSS in page.locator("#versions tr[data-version='2'] td").last.inner_text()  # a description, as text
    moves = page.locator("#timeline li[data-kind='alias'][data-alias='champion']")
    assert _texts(page, "#timeline li[data-kind='alias'][data-alias='champion'] [data-field=move]") == \
        ["1 → 2", "∅ → 1"]
    assert XSS in moves.first.locator("[data-field=reason]").inner_text()
    stored = next(e for e in evaluations(registry, "house-price", 2))
    ci = next(c for c in stored.checks if "ci_low" in c.evidence)
    line = moves.first.locator("svg.ci line.interval").first
    assert float(line.get_attribute("data-low")) == ci.evidence["ci_low"]
    assert float(line.get_attribute("data-high")) == ci.evidence["ci_high"]
    assert moves.first.locator("svg.ci g.x-axis g.tick").count() >= 3
    verdict = moves.first.locator("[data-field=verdict]").inner_text()
    assert verdict == ("passed" if stored.passed else "failed")
    assert page.evaluate("window.__xss") is None
    shot(page, "pages-model-regressor")

    # a classifier: promoted by its gate, a weaker challenger refused with the failing checks and slices
    page.goto(base + "/models/breast-cancer")
    refused = page.locator("#timeline li[data-kind='promote_refused']")
    assert refused.count() >= 1
    assert refused.first.locator("[data-field=verdict]").inner_text() == "failed"
    assert refused.first.locator("td.failed").count() >= 1
    assert refused.first.locator("table.slices tbody tr").count() >= 1
    champion = registry.get("models:/breast-cancer@champion")
    assert page.locator("#alias-table tr[data-alias='champion'] td").inner_text() == f"version {champion.version}"
    shot(page, "pages-model-classifier")

    page.locator(f"#versions tr[data-version='{champion.version}'] th a").click()
    assert page.locator("#model-card h1").inner_text() == f"Model card: breast-cancer version {champion.version}"
    assert "champion" in page.locator("[data-field=aliases]").inner_text()
    shot(page, "pages-model-version")


def test_monitoring_pages_show_drift_performance_and_the_retraining_chain(page: Any, loop: Loop) -> None:
    from conveyor.store import MonitoringRepo

    base = loop.server.url
    repo = MonitoringRepo()
    with loop.tracker.store.read() as conn:
        rows = repo.evaluations(conn, model="churn-loop", limit=200)
        alerts = repo.alerts(conn, model="churn-loop")
        triggers = repo.triggers(conn, model="churn-loop")
    newest = next(r for r in rows if r.metrics.get("drift_report"))
    page.goto(base + "/monitoring")
    row = page.locator("#monitored tr[data-model='churn-loop'] td")
    assert row.nth(4).inner_text() == str(len(rows)) and row.nth(5).inner_text() == str(len(alerts))
    shot(page, "pages-monitoring")

    page.locator("#monitored tr[data-model='churn-loop'] th a").click()
    assert page.locator("[data-field=evaluation]").inner_text() == str(newest.id)
    columns = newest.metrics["drift_report"]["columns"]
    flags = page.locator("#drift-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.drifted)")
    assert len(flags) == len(columns) and flags == sorted(flags, reverse=True)  # "true" before "false"
    for c in columns:
        shown = page.locator(f"#drift-table tr[data-column='{c['column']}'] td").nth(4 if c["method"] in
                                                                                   ("ks", "chisquare", "z") else 5)
        assert abs(float(shown.inner_text()) - c["value"]) <= 1e-5 * max(1, abs(c["value"]))
    assert page.locator("#distributions figure").count() == len(columns)
    _axes_ok(page.locator("#distributions figure").first)
    features = page.locator("#feature-drift figure")
    assert features.count() == len(columns)
    first = features.first.get_attribute("data-column")
    stored = [r.metrics[f"drift({first})"] for r in reversed(rows)
              if isinstance(r.metrics.get(f"drift({first})"), (int, float))]
    shown = features.first.locator("circle.point").evaluate_all("ps => ps.map(p => Number(p.dataset.value))")
    assert shown == pytest.approx(stored)
    outputs = page.locator("#prediction-drift figure[data-part='outputs']")
    _axes_ok(outputs)
    assert outputs.locator("p.stored").count() == 1  # the stored verdict beside the one from the log
    accuracy = page.locator("#performance figure[data-metric='accuracy']")
    assert accuracy.locator("line.baseline").count() == 1  # the offline metric beside the live one
    _axes_ok(accuracy)
    # the alert that fired, the trigger it started, the pipeline run and candidate it produced
    fired = [t for t in triggers if t.alert_id is not None]
    assert fired, "the quickstart's drift alert triggers a retraining"
    trigger = fired[0]
    link = page.locator(f".retrain[data-trigger='{trigger.id}']")
    assert link.locator("[data-field=trigger-status]").inner_text() == trigger.status
    shot(page, "pages-monitor-model")
    link.get_by_role("link", name=f"pipeline run {trigger.run_id[:12]}").click()
    assert page.url.endswith(f"/pipelines/runs/{trigger.run_id}")
    assert page.locator("#dag g.node").count() >= 2
    page.go_back()
    if trigger.candidate_version is not None:
        link.get_by_role("link", name=f"candidate version {trigger.candidate_version}").click()
        assert page.url.endswith(f"/models/churn-loop/versions/{trigger.candidate_version}")
        page.go_back()
    # an older evaluation, by its link (the selection is in the URL)
    older = rows[-1]
    page.locator(f"#evaluations tr[data-evaluation='{older.id}'] th a").click()
    assert page.url.endswith(f"?evaluation={older.id}")
    assert page.locator("[data-field=evaluation]").inner_text() == str(older.id)
    assert page.locator("#evaluations tr[aria-current=true]").get_attribute("data-evaluation") == str(older.id)


@pytest.mark.parametrize("path", [
    "/datasets/no-such-data", "/datasets/churn-train/99", "/datasets/churn-train/diff?a=1&b=7",
    "/models/no-such-model", "/models/breast-cancer/versions/99", "/models/breast-cancer/versions/x",
    "/pipelines/runs/0123456789abcdef", "/monitoring/no-such-model", "/lineage?ref=data:/no-such-data@1",
    "/lineage?ref=models:/breast-cancer/99", "/monitoring/churn-loop?evaluation=99999", "/lineage?ref=nonsense:<i>",
])
def test_unknown_things_are_the_404_page(page: Any, loop: Loop, path: str) -> None:
    page.console.allow("404")
    response = page.goto(loop.server.url + path)
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"


@pytest.mark.parametrize("path", ["/monitoring/churn-loop?evaluation=<b>x", "/datasets/churn-train/diff?a=1",
                                  "/lineage?ref=", "/lineage?ref=<i>x</i>"])
def test_bad_parameters_are_the_400_page(page: Any, loop: Loop, path: str) -> None:
    page.console.allow("400")
    response = page.goto(loop.server.url + path)
    assert response is not None and response.status == 400
    assert page.locator("h1").inner_text() == "Bad request"
    assert page.locator("main i, main b").count() == 0


def test_html_in_names_is_text(page: Any, loop: Loop) -> None:
    page.console.allow("404")
    for path in ("/datasets/", "/models/", "/monitoring/", "/pipelines/runs/"):
        response = page.goto(loop.server.url + path + XSS.replace("#", "%23"))
        assert response is not None and response.status == 404
        assert page.evaluate("window.__xss") is None
        assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    assert "<img" in page.locator("main").inner_text()  # shown, as text
    shot(page, "pages-404-html")


def test_a_guest_sees_only_what_it_may_read(page: Any, loop: Loop, tmp_path: Path) -> None:
    """Real users and roles: ``guest`` may read the model house-price and the data set
    churn-train, nothing else (the default role is none)."""
    from conveyor.server import Users, create_app
    from conveyor.settings import ServerSettings

    users = Users(loop.tracker.store)
    users.add("guest")
    users.grant("guest", "model", "house-price", "read")
    users.grant("guest", "data", "churn-train", "read")
    guest = users.create_token("guest", "ui")
    app = create_app(loop.tracker, auth=True, server=ServerSettings(default_role="none"), users=users)
    server = LiveServer(app)
    try:
        page.console.allow("403")
        page.goto(server.url + "/login")
        page.fill("#token", guest)
        page.click(".login button[type=submit]")
        page.wait_for_url(server.url + "/experiments")
        page.goto(server.url + "/models")
        assert _texts(page, "#models tbody th") == ["house-price"]
        page.goto(server.url + "/datasets")
        assert _texts(page, "#datasets tbody th") == ["churn-train"]
        page.goto(server.url + "/pipelines")
        assert page.locator("#pipeline-runs").count() == 0  # no experiment may be read
        page.goto(server.url + "/monitoring")
        assert page.locator("#monitored").count() == 0
        page.goto(server.url + "/lineage?ref=models:/house-price/2")
        kinds = set(page.locator("#lineage g.node").evaluate_all("ns => ns.map(n => n.dataset.kind)"))
        assert kinds == {"model_version", "alias"}  # its training run's experiment is not readable
        for path in ("/models/breast-cancer", "/models/breast-cancer/versions/1", "/datasets/breast-cancer",
                     "/datasets/breast-cancer/1", "/monitoring/churn-loop", "/lineage?ref=data:/breast-cancer@1"):
            response = page.goto(server.url + path)
            assert response is not None and response.status == 403, path
            assert page.locator("h1").inner_text() == "Forbidden"
            assert "breast-cancer" not in page.locator("main").inner_text().replace(path, "")
            assert "churn-loop" not in page.locator("main").inner_text().replace(path, "")
    finally:
        server.stop()
