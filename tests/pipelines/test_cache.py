"""The step cache: hits only on equal keys AND intact outputs; every key ingredient counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.blobs import Digest
from conveyor.pipelines import run

SOURCE = """
import helpers_{tag} as helpers

@step
def load(n: int = 3) -> list:
    return list(range(n))

@step(cache_version={version!r})
def total(rows: list, scale: float = 1.0) -> dict:
    return {{"total": helpers.double(sum(rows)) * scale}}

@pipeline
def flow(scale: float = 1.0, n: int = 3):
    total(load(n=n), scale=scale)
"""


@pytest.fixture
def flow(pipes: Any, tmp_path: Path) -> Any:
    """make(version=None, helper="x * 2") → the pipeline, with a project-local helper module."""
    tag = tmp_path.name.replace("-", "_")[-20:]

    def make(version: str | None = None, helper: str = "x * 2", name: str = "flow_mod") -> Any:
        pipes(f"def double(x):\n    return {helper}\n", name=f"helpers_{tag}")
        return pipes(SOURCE.format(tag=tag, version=version), name=f"{name}_{tag}").flow

    return make


def test_second_run_is_fully_cached_and_recorded(flow: Any, local_tracker: Any) -> None:
    first = run(flow(), tracker=local_tracker)
    assert first.ok and first.cached == []
    second = run(flow(), tracker=local_tracker)
    assert second.ok and second.cached == ["load", "total"]
    assert second.load("total") == {"total": 6.0}
    child = local_tracker.get_run(second.steps["total"].run_id)
    assert child.parent_id == second.run_id
    assert child.tags["conveyor.cache"] == "hit"
    assert child.tags["conveyor.cached_from"] == first.steps["total"].run_id
    assert child.tags["conveyor.cache_hit"] == "1" and "cache_hit" not in child.metrics  # bookkeeping, not a metric
    assert local_tracker.get_run(second.run_id).tags["conveyor.cached_steps"] == "2/2"


def test_parameters_and_inputs_are_in_the_key(flow: Any, local_tracker: Any) -> None:
    run(flow(), tracker=local_tracker)
    other_scale = run(flow(), params={"scale": 2.0}, tracker=local_tracker)
    assert other_scale.cached == ["load"]
    other_input = run(flow(), params={"n": 4}, tracker=local_tracker)
    assert other_input.cached == []  # load's param changed, so total's input digest did too


def test_a_change_in_a_called_project_helper_misses_the_cache(flow: Any, local_tracker: Any) -> None:
    run(flow(), tracker=local_tracker)
    changed = run(flow(helper="x * 3"), tracker=local_tracker)
    assert changed.cached == ["load"]
    assert changed.load("total") == {"total": 9.0}


def test_cache_version_and_cache_switches(flow: Any, local_tracker: Any) -> None:
    run(flow(), tracker=local_tracker)
    assert run(flow(version="2"), tracker=local_tracker).cached == ["load"]
    assert run(flow(version="2"), tracker=local_tracker, cache=False).cached == []
    no_cache = run(flow(version="2"), tracker=local_tracker, cache=False)
    assert local_tracker.get_run(no_cache.steps["load"].run_id).tags["conveyor.cache"] == "disabled"


def test_step_with_cache_false_always_runs(pipes: Any, local_tracker: Any) -> None:
    module = pipes("""
        @step(cache=False)
        def now() -> str:
            import uuid
            return uuid.uuid4().hex

        @pipeline
        def flow():
            now()
    """)
    a = run(module.flow, tracker=local_tracker)
    b = run(module.flow, tracker=local_tracker)
    assert b.cached == [] and a.load("now") != b.load("now")


def _object_path(tracker: Any, digest: str) -> Path:
    root = Path(tracker.blobs._backend.url)
    hexa = Digest.parse(digest).hex
    return root / hexa[:2] / hexa[2:]


@pytest.mark.parametrize("damage", ["delete-manifest", "delete-file", "corrupt-file"])
def test_a_deleted_or_corrupted_output_is_detected_and_recomputed(
    flow: Any, local_tracker: Any, damage: str
) -> None:
    first = run(flow(), tracker=local_tracker)
    manifest_digest = first.steps["total"].outputs["output"]["digest"]
    entry = local_tracker.blobs.read_manifest(Digest.parse(manifest_digest)).entries[0]
    target = _object_path(local_tracker, manifest_digest if damage == "delete-manifest" else str(entry.digest))
    target.chmod(0o644)
    if damage.startswith("delete"):
        target.unlink()
    else:
        target.write_bytes(b'{"total": 666}')
    again = run(flow(), tracker=local_tracker)
    assert again.ok
    assert again.cached == ["load"]  # total ran again instead of reusing the damaged output
    assert again.load("total") == {"total": 6.0}
    assert run(flow(), tracker=local_tracker).cached == ["load", "total"]


def test_environment_counts_package_versions(pipes: Any) -> None:
    from conveyor.pipelines._cache import environment

    module = pipes("""
        import numpy as np

        @step
        def arr() -> list:
            import pandas
            return np.arange(3).tolist()

        @step(env=["numpy"])
        def declared() -> int:
            return 1
    """)
    found = environment(module.arr, None)
    assert "numpy" in found and "pandas" in found
    assert list(environment(module.declared, ("numpy",))) == ["numpy"]
