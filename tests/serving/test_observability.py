"""Prometheus /metrics and the JSON access log; config and value objects."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from conftest import Doubler, client, run
from conveyor.errors import ConfigError, InvalidInput
from conveyor.serving import CanarySpec, ServingConfig


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exposition parsed: (sample name, labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_exposition(make_app: Any) -> None:
    text = _metrics(make_app)
    got = samples(text)
    base = {("model", "d"), ("version", "7")}
    for name, labels, value in (
        ("conveyor_requests_total", {("protocol", "mlflow"), ("code", "200")}, 1),
        ("conveyor_requests_total", {("protocol", "mlflow"), ("code", "422")}, 1),
        ("conveyor_requests_total", {("protocol", "mlflow"), ("code", "500")}, 1),
        ("conveyor_request_errors_total", {("kind", "client")}, 1),
        ("conveyor_request_errors_total", {("kind", "server")}, 1),
        ("conveyor_request_duration_seconds_count", set(), 3),
        ("conveyor_batch_size_rows_bucket", {("le", "1.0")}, 2),
        ("conveyor_queue_depth", set(), 0),
    ):
        assert got[(name, frozenset(base | labels))] == value, (name, labels)
    assert "# TYPE conveyor_request_duration_seconds histogram" in text
    # names and versions that are not served share one label value; a served name keeps its own
    unknown = {("model", "(unknown)"), ("version", ""), ("protocol", "oip"), ("code", "404")}
    assert got[("conveyor_requests_total", frozenset(unknown))] == 2
    assert got[("conveyor_requests_total", frozenset({("model", "d"), ("version", ""), ("protocol", "oip"),
                                                      ("code", "404")}))] == 1
    assert "nope" not in text and not any(dict(labels).get("version") == "9" for _, labels in got)


def _metrics(make_app: Any) -> str:
    app = make_app(("d", Doubler(), "7"))
    out: dict[str, str] = {}

    async def go() -> None:
        async with client(app) as c:
            await c.post("/invocations", json={"instances": [1]})
            await c.post("/invocations", json={"instances": ["x"]})
            await c.post("/invocations", json={"instances": [666]})
            await c.post("/v2/models/nope/infer", json={})
            await c.post("/v2/models/nope2/versions/1/infer", json={})
            await c.post("/v2/models/d/versions/9/infer", json={})
            out["text"] = (await c.get("/metrics")).text

    run(go())
    return out["text"]


def test_access_log_is_one_json_line_per_request(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(("d", Doubler(), "2"))

    async def go() -> None:
        async with client(app) as c:
            await c.post("/invocations", json={"instances": [1]}, headers={"x-request-id": "abc"})
            await c.get("/v2/health/live")

    with caplog.at_level(logging.INFO, logger="conveyor.serving.access"):
        run(go())
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "conveyor.serving.access"]
    assert lines[0]["request_id"] == "abc" and lines[0]["status"] == 200 and lines[0]["model"] == "d"
    assert lines[0]["version"] == "2" and lines[0]["path"] == "/invocations" and lines[0]["ms"] >= 0
    assert lines[1]["path"] == "/v2/health/live" and len(lines[1]["request_id"]) == 32


def test_config_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match="max_batch_sise"):
        ServingConfig.from_mapping({"max_batch_sise": 3})
    with pytest.raises(ConfigError, match="queue_size"):
        ServingConfig.from_mapping({"queue_size": 0})
    assert ServingConfig.from_mapping({"max_wait_ms": 1}, max_wait_ms=5).max_wait_ms == 5


@pytest.mark.parametrize("text, ok", [("iris@challenger:10", True), ("models:/iris/3:5", True),
                                      ("iris@challenger", False), ("iris@c:x", False), ("iris@c:150", False)])
def test_canary_spec(text: str, ok: bool) -> None:
    if ok:
        spec = CanarySpec.parse(text)
        assert spec.name == "iris" and 0 < spec.percent <= 100
    else:
        with pytest.raises(InvalidInput):
            CanarySpec.parse(text)


def test_public_api_is_pinned() -> None:
    import conveyor.serving

    assert conveyor.serving.__all__ == sorted(conveyor.serving.__all__)
    assert set(conveyor.serving.__all__) == {
        "CanarySpec", "ModelSource", "RegistrySource", "ServedModel", "ServingConfig", "build_context",
        "create_app", "read_feedback", "read_prediction_log", "run"}
