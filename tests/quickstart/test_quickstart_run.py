"""The README's first command: `conveyor quickstart` runs the whole loop in a new folder and
ends with the project's ML Test Score, computed from what the loop recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop_and_ends_with_its_score(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["COLUMNS"] = "200"
    conveyor = [sys.executable, "-m", "conveyor"]
    done = subprocess.run([*conveyor, "quickstart", "--folder", "qs"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    for stage in ("1. Track", "2. Version", "3. Orchestrate", "4. Package", "5. Gate", "6. Serve", "7. Monitor",
                  "8. Score"):
        assert stage in out, stage
    assert "promoted" in out and "vetoed" in out
    assert "final score" in out and "Google MLOps level" in out

    scored = subprocess.run([*conveyor, "score", "--json"], cwd=tmp_path / "qs", env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert scored.returncode == 0, scored.stderr
    score = json.loads(scored.stdout)
    tests = {t["id"]: t for t in score["tests"]}
    # What the quickstart really does is counted as automated, with its evidence.
    for test_id in ("Infra 4", "Model 5", "Monitor 2", "Monitor 7"):
        assert tests[test_id]["status"] == "automated", tests[test_id]
        assert tests[test_id]["evidence"], test_id
    assert score["final"] == min(score["sections"].values())
