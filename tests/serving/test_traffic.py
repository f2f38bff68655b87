"""Canary split, stickiness by header, shadow copies, metrics per version."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import Doubler, client, run
from conveyor.serving import ServedModel


def _versions(body: dict[str, Any]) -> str:
    return str(body["model_version"])


def oip_x(value: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [value]}]}


def test_canary_takes_its_share_and_metrics_are_per_version(make_app: Any) -> None:
    app = make_app(("m", Doubler(), "1"), canary=[(ServedModel("m", Doubler(factor=3.0), "2"), 30.0)])

    async def go() -> None:
        async with client(app) as c:
            answers = [(await c.post("/v2/models/m/infer", json=oip_x(1))).json() for _ in range(400)]
            by_version = {"1": 0, "2": 0}
            for a in answers:
                by_version[_versions(a)] += 1
                assert a["outputs"][0]["data"] == [2.0 if a["model_version"] == "1" else 3.0]
            assert 70 <= by_version["2"] <= 180, by_version  # 30 % of 400, loosely
            metrics = (await c.get("/metrics")).text
            assert f'conveyor_requests_total{{code="200",model="m",protocol="oip",version="2"}} {by_version["2"]}.0' \
                in metrics
            assert 'conveyor_queue_depth{model="m",version="1"} 0.0' in metrics
            assert (await c.get("/v2/models/m")).json()["versions"] == ["1", "2"]

    run(go())


def test_sticky_header_pins_a_client_to_one_version(make_app: Any) -> None:
    app = make_app(("m", Doubler(), "1"), canary=[(ServedModel("m", Doubler(factor=3.0), "2"), 50.0)],
                   sticky_header="x-user")

    async def go() -> None:
        async with client(app) as c:
            seen: dict[str, set[str]] = {}
            for user in (f"user-{i}" for i in range(20)):
                for _ in range(5):
                    r = await c.post("/v2/models/m/infer", json=oip_x(1), headers={"x-user": user})
                    seen.setdefault(user, set()).add(r.json()["model_version"])
            assert all(len(v) == 1 for v in seen.values())
            assert {next(iter(v)) for v in seen.values()} == {"1", "2"}

    run(go())


def test_shadow_gets_a_copy_only_the_champion_answers_both_logged(make_app: Any, tracker: Any) -> None:
    from conveyor.serving import read_prediction_log

    shadow = Doubler(factor=10.0)
    app = make_app(("m", Doubler(), "1"), shadow=[ServedModel("m", shadow, "2")], tracker=tracker)

    async def go() -> None:
        async with client(app) as c:
            answers = await asyncio.gather(*(c.post("/invocations", json={"instances": [v]}) for v in range(10)))
            assert [a.json()["predictions"] for a in answers] == [[2.0 * v] for v in range(10)]
        # leaving the lifespan waits for the shadow copies and flushes the log

    run(go())
    assert sum(shadow.calls) == 10
    log = read_prediction_log("m", tracker=tracker)
    assert sorted(log.groupby("version").size().to_dict().items()) == [("1", 10), ("2", 10)]
    champion, copy = log[log.version == "1"], log[log.version == "2"]
    assert set(champion.request_id) == set(copy.request_id)
    assert sorted(copy.y) == [10.0 * v for v in range(10)]
