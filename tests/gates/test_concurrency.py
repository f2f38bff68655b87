"""Two real processes promoting at once: exactly one wins, the history shows both."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor.gates import define_gate, evaluate


@pytest.fixture
def mode() -> str:
    """Worker processes open the stores themselves: these tests run embedded only."""
    return "embedded"

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from conveyor.blobs import BlobStore
    from conveyor.errors import Conflict
    from conveyor.registry import Registry
    from conveyor.store import Store
    from conveyor.tracking import Tracker

    url, blobs, go, action, arg = sys.argv[1:6]
    tracker = Tracker(Store.open(url), BlobStore.open(blobs))
    registry = Registry(tracker)
    while not Path(go).exists():
        time.sleep(0.005)
    try:
        if action == "promote":
            from conveyor.gates import promote
            event = promote("clf", int(arg), registry=registry, user=f"worker{arg}")
            print(json.dumps({"won": True, "version": int(event.to_value)}))
        else:
            print(json.dumps({"won": True, "version": registry.register(arg, "clf").version}))
    except Conflict as exc:
        print(json.dumps({"won": False, "error": exc.message}))
    tracker.close()
    """
)


def _race(tmp_path: Path, tracker: Any, jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    go = tmp_path / "go"
    url = tracker.store.engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen([sys.executable, str(script), url, str(tmp_path / "artifacts"), str(go), action, arg],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for action, arg in jobs
    ]
    go.write_text("go")
    outputs = []
    for proc in procs:
        # a registering worker imports scikit-learn and loads the package before READY: slow on a busy machine
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


def test_two_processes_promoting_at_once_exactly_one_wins(
    tmp_path: Path, tracker: Any, registry: Any, candidate: Any, frames: Any
) -> None:
    spec = define_gate(metrics=["accuracy >= 0.5"], slices=None)
    for kind in ("good", "good"):
        version = candidate(kind)
        assert evaluate(spec, version.uri, frames[1], registry=registry).passed
    outcomes = _race(tmp_path, tracker, [("promote", "1"), ("promote", "2")])
    assert sorted(o["won"] for o in outcomes) == [False, True]
    winner = next(o["version"] for o in outcomes if o["won"])
    assert registry.resolve("models:/clf@champion").version == winner
    kinds = sorted(e.kind for e in registry.history("clf", alias="champion"))
    assert kinds == ["alias", "promote_lost"]
    users = {e.user for e in registry.history("clf", alias="champion")}
    assert users == {"worker1", "worker2"}


def test_concurrent_registrations_get_distinct_consecutive_versions(
    tmp_path: Path, tracker: Any, registry: Any, candidate: Any
) -> None:
    first = candidate("good")
    outcomes = _race(tmp_path, tracker, [("register", first.source)] * 4)
    assert sorted(o["version"] for o in outcomes) == [2, 3, 4, 5]
