"""Schemathesis over the inference server's own OpenAPI document: generated requests
(examples, coverage of every documented and undocumented method and status, fuzzing; a
bounded number of each) never get a 5xx, every 405 carries ``Allow``, and every status
and response shape is one the document declares.

The app serves two real scikit-learn models (a random forest on wine, a scaled logistic
regression on breast cancer) with the prediction log on, so feedback is exercised too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.entities import ColumnSpec, Signature


class Forest:
    flavor = "sklearn"

    def __init__(self) -> None:
        from sklearn.datasets import load_wine
        from sklearn.ensemble import RandomForestClassifier

        data = load_wine(as_frame=True)
        self.model = RandomForestClassifier(n_estimators=5, random_state=0).fit(data.data.to_numpy(), data.target)
        self.signature = Signature(tuple(ColumnSpec(c, "float64") for c in data.data.columns),
                                   (ColumnSpec("prediction", "int64"),))

    def predict(self, data: Any) -> Any:
        return self.model.predict(np.asarray(data, dtype=float))


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import conveyor.models
    from conveyor.blobs import BlobStore
    from conveyor.serving import ServedModel, ServingConfig, create_app
    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    root: Path = tmp_path_factory.mktemp("openapi")
    data = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)
    conveyor.models.save(model, root / "bc", input_example=data.data[:5])
    store = Store.open(f"sqlite:///{root / 'meta.db'}", create=True)
    blobs = BlobStore.open(root / "artifacts")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05))
    app = create_app([ServedModel("wine", Forest(), "1"), ServedModel("bc", conveyor.models.load(root / "bc"), "2")],
                     tracker=tracker, config=ServingConfig(access_log=False, log_flush_s=0.05, max_body_bytes=200_000))
    yield app
    tracker.close()
    store.close()


def _live(app: Any) -> Any:
    """A real uvicorn server on 127.0.0.1 in a thread (the app's lifespan runs)."""
    import socket
    import threading
    import time

    import uvicorn

    from conveyor.serving._nodelay import NoDelayProtocol

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=NoDelayProtocol,
                            lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


CHECKS = "not_a_server_error,unsupported_method,status_code_conformance,content_type_conformance," \
         "response_schema_conformance,response_headers_conformance"


@pytest.mark.slow
def test_generated_requests_follow_the_document(served_app: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    server, thread, url = _live(served_app)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing", "--max-examples", "20", "--seed", "1",
             "--request-timeout", "20", "--report-dir", str(tmp_path), "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        metrics = httpx.get(f"{url}/metrics").text
    finally:
        server.should_exit = True
        thread.join(30)
    assert result.returncode == 0, result.stdout + result.stderr
    # the generated requests reached both served models (not only 404s for made-up names)
    reached = {(s.labels["model"], s.labels["code"][0]) for f in text_string_to_metric_families(metrics)
               for s in f.samples if s.name == "conveyor_requests_total"}
    assert {("wine", "4"), ("bc", "4")} <= reached, reached
    print(result.stdout[result.stdout.find("SUMMARY"):])
