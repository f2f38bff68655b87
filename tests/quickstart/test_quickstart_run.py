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
    automated = {"Data 1", "Data 2", "Data 3", "Data 4", "Data 5", "Data 6", "Data 7",
                 "Model 1", "Model 2", "Model 3", "Model 4", "Model 5", "Model 6", "Model 7",
                 "Infra 1", "Infra 2", "Infra 3", "Infra 4", "Infra 5", "Infra 6", "Infra 7",
                 "Monitor 1", "Monitor 2", "Monitor 3", "Monitor 4", "Monitor 5", "Monitor 6", "Monitor 7"}
    assert {t for t, v in tests.items() if v["status"] == "automated"} == automated
    for test_id, test in tests.items():
        if test["status"] != "missing":
            assert test["evidence"], test_id  # every point names the records it used
    # Every point is automated, none recorded by hand.
    assert {t for t, v in tests.items() if v["status"] == "manual"} == set()
    assert score["sections"] == {"Data": 7, "Model": 7, "Infra": 7, "Monitor": 7}
    assert score["final"] == 7 == min(score["sections"].values())
    assert score["band"] == "Exceptional levels of automated testing and monitoring"
    assert score["google_level"] == 2 and score["microsoft_level"] == 4
    assert "final score 7" in out
    # Model 1: the project is its own git repository; every run trained from a clean commit
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tmp_path / "qs", capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert log == ["CI: gate workflow, unit tests, [gates.quickstart]", "The quickstart project: its conveyor.toml"]
    assert tests["Model 1"]["evidence"][0].endswith("run(s) trained from a clean git commit")
    runs = tests["Model 1"]["evidence"][0].split()
    assert runs[0] == runs[2]  # "N of N run(s)"
    # Data 4 and 5: the gate validated the kept schema file and scanned for personal data
    assert "kept schema file" in tests["Data 4"]["evidence"][0]
    assert "personal data" in tests["Data 5"]["evidence"][0]
    # Model 4: the gate scored older versions of the model on the candidate's evaluation data
    assert "older versions on today's data" in tests["Model 4"]["evidence"][0]
    assert "stepped a row through the loaded package" in tests["Infra 5"]["evidence"][0]
    assert "new_data_versions > 0" in tests["Monitor 1"]["evidence"][0]
    assert {t for t, v in tests.items() if v["status"] == "missing"} == set()
    # Data 3: the churn gate measured each feature's cost next to its importance
    assert "measurement of each feature's cost" in tests["Data 3"]["evidence"][0]
    assert "4 of 4 steps gave byte-identical outputs" in out and "rollback drill" in out
    assert "breast-cancer@challenger took 50% of the customers" in out
    assert "skew_mismatch_rate > 0" in tests["Monitor 3"]["evidence"][0]
    assert (tmp_path / "qs" / ".github" / "workflows" / "conveyor-gate.yml").is_file()
