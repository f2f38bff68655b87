"""Quickstart stage: serve the champion on 127.0.0.1, query it over real HTTP, stop.

Needs from earlier stages: a registered model with a ``champion`` alias — taken from
``story.facts["champion"]`` (a ``models:/…`` URI) when the registry stage set it, else the
first registered model that has a champion; with none, this stage registers one itself
(logistic regression on ``story.facts["data"]`` or the breast-cancer set). Leaves
``story.facts["serving"]`` with the URL used, the answers and the logged row count. When the
gate stage made a ``@challenger`` (``story.facts["challenger"]``), it is served as a 50%
canary next to the champion: customers are pinned by the ``x-customer`` header, two land
on each side, and the prediction log shows both versions serving at once.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from rich.table import Table

from conveyor.quickstart._run import Story


def _champion(story: Story) -> str:
    from conveyor.registry import Registry

    if isinstance(story.facts.get("champion"), str):
        return str(story.facts["champion"])
    registry = Registry(story.tracker)
    for model in registry.list_models():
        if "champion" in model.aliases:
            return f"models:/{model.name}@champion"
    return _register_one(story, registry)


def _register_one(story: Story, registry: Any) -> str:
    import conveyor
    import conveyor.models

    if "data" not in story.facts:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split

        data = load_breast_cancer(as_frame=True)
        story.facts["data"] = train_test_split(data.data, data.target, test_size=0.25, random_state=42)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, _, y_train, _ = story.facts["data"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    with conveyor.start_run(experiment="quickstart", name="serving-champion") as run:
        conveyor.models.log(model, "model", input_example=X_train[:5])
    version = registry.register(f"runs:/{run.id}/model", "quickstart").version
    registry.set_alias("quickstart", "champion", version, reason="quickstart serving stage")
    story.console.print(f"  no champion yet: registered quickstart v{version} as champion")
    return "models:/quickstart@champion"


CANARY_PERCENT = 50
STICKY = "x-customer"


def _users() -> list[str]:
    """Two customers per side: the canary takes a customer whose sticky bucket (crc32 of the
    header, as the router computes it) is below the canary percent."""
    import zlib

    def bucket(user: str) -> float:
        return (zlib.crc32(user.encode()) % 10_000) / 100

    users = [f"customer-{i}" for i in range(40)]
    canaried = [u for u in users if bucket(u) < CANARY_PERCENT][:2]
    return canaried + [u for u in users if bucket(u) >= CANARY_PERCENT][:2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stage(story: Story) -> None:
    import httpx
    import uvicorn

    from conveyor.serving import ServingConfig, create_app, read_prediction_log
    from conveyor.serving._nodelay import NoDelayProtocol

    uri = _champion(story)
    story.tracker.flush()
    challenger = story.facts.get("challenger")
    canary = [f"{challenger}:{CANARY_PERCENT}"] if challenger else []
    app = create_app([uri], canary=canary, tracker=story.tracker,
                     config=ServingConfig(access_log=False, log_flush_s=0.2, sticky_header=STICKY))
    served = app.state.server.fleet.all()[0]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=NoDelayProtocol, lifespan="on"))
    thread = threading.Thread(target=server.run, name="quickstart-server", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    story.console.print(f"serving {uri} (version {served.version}) on {url} — OIP v2 and MLflow /invocations")

    _, X_test, _, y_test = story.facts["data"]
    rows, truth = X_test.iloc[:5], list(y_test.iloc[:5])
    try:
        # the tour's requests come from a customer the router keeps on the champion
        with httpx.Client(base_url=url, timeout=30, headers={STICKY: _users()[-1]}) as http:
            mlflow = http.post("/invocations", json={"dataframe_split": {
                "columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
            oip = http.post(f"/v2/models/{served.name}/infer", json={"id": "quickstart-1", "inputs": [
                {"name": "features", "shape": list(rows.shape), "datatype": "FP64",
                 "data": rows.to_numpy().reshape(-1).tolist()}]})
            http.post(f"/v2/models/{served.name}/feedback", json={"request_id": "quickstart-1", "labels": truth})
            broken = {**rows.iloc[0].to_dict(), rows.columns[0]: "big"}
            bad = http.post("/invocations", json={"dataframe_records": [broken]})
            if canary:  # customers pinned (by a sticky header) to the champion or to the canary
                for user in _users():
                    http.post("/invocations", headers={STICKY: user}, json={"dataframe_split": {
                        "columns": list(rows.columns), "data": rows.to_numpy()[:1].tolist()}}).raise_for_status()
    finally:
        server.should_exit = True
        thread.join(30)

    table = Table(title=f"answers from {url}")
    for column in ("row", "MLflow /invocations", "OIP /v2/.../infer", "truth"):
        table.add_column(column, justify="right")
    oip_values = oip.json()["outputs"][0]["data"]
    for i, (a, b, t) in enumerate(zip(mlflow.json()["predictions"], oip_values, truth, strict=True)):
        table.add_row(str(i), str(a), str(b), str(t))
    story.console.print(table)
    story.console.print(f"a bad request gets {bad.status_code}: {bad.json()['error'][:100]}…")
    log = read_prediction_log(served.name, tracker=story.tracker, with_feedback=True)
    story.console.print(f"server stopped; the prediction log holds {len(log)} rows "
                        f"({int(log['label'].notna().sum())} with feedback labels) — monitoring reads it")
    if canary:
        by_version = log["version"].astype(str).value_counts().sort_index()
        story.console.print(f"canary: {challenger} took {CANARY_PERCENT}% of the customers next to the champion; "
                            "rows served per version: " + ", ".join(f"v{v}: {n}" for v, n in by_version.items()),
                            highlight=False)
    story.facts["serving"] = {"uri": uri, "url": url, "answers": oip_values, "log_rows": len(log)}
