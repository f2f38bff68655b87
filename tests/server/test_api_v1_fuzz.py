"""Schemathesis over the registry, data set, pipeline, monitoring and lineage operations of
``/api/v1`` on a store full of real records (fixtures/api_world.py): generated requests,
examples and fuzzed values, never get a 5xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.api_world import World
from fixtures.remote import serve


@pytest.mark.slow
def test_generated_requests_get_no_server_error(api_world: World, tmp_path: Path) -> None:
    if not api_world.store_url.startswith("sqlite"):
        pytest.skip("one store kind is enough for fuzzing (the routers are the same)")
    with serve(api_world.tracker) as server:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
             "--url", f"{server.url}/api/v1", "--checks", "not_a_server_error",
             "--include-tag-regex", "^(models|datasets|pipelines|monitoring|lineage)$",
             "--phases", "examples,fuzzing", "--max-examples", "12", "--seed", "1",
             "--request-timeout", "30", "--report-dir", str(tmp_path), "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout[-3000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested is not None and int(tested.group(1)) >= 40, result.stdout[-2500:]  # every domain operation ran
