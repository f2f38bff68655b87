"""Quickstart stage part: the project's CI. ``conveyor ci init --provider github`` writes the
gate workflow (pull requests gate the training pipeline's candidate, main promotes it); a
unit-test step runs the project's tests of its training code, which this writes in
``tests/test_training.py`` and runs once here with pytest, so the file is known to pass. The
gate the workflow names is written into ``conveyor.toml`` as ``[gates.quickstart]``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from conveyor.quickstart._run import Story

PIPELINE = "conveyor.quickstart._pipeline:training"
TESTS = '''"""Unit tests of the quickstart's training code (run in CI by .github/workflows/conveyor-gate.yml)."""
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from conveyor.quickstart._pipeline import split, train, validate


def test_validate_refuses_a_table_with_missing_values():
    frame = load_breast_cancer(as_frame=True).frame
    with pytest.raises(ValueError, match="target"):
        validate.__wrapped__(frame.drop(columns="target"))
    with pytest.raises(ValueError):
        validate.__wrapped__(frame.assign(**{"mean radius": None}))


def test_split_is_stratified_and_the_model_learns():
    frame = load_breast_cancer(as_frame=True).frame
    train_rows, test_rows = split.__wrapped__(frame)
    assert len(train_rows) + len(test_rows) == len(frame)
    assert abs(train_rows["target"].mean() - test_rows["target"].mean()) < 0.02
    model = train.__wrapped__(train_rows)
    assert (model.predict(test_rows.drop(columns="target")) == test_rows["target"]).mean() > 0.9
'''


def write_ci(story: Story, gate: Any) -> None:
    import tomli_w

    from conveyor.ci import write_workflow
    from conveyor.errors import AlreadyExists

    out = story.console.print
    folder = story.folder
    try:
        path = write_workflow(folder, "github", pipeline=PIPELINE, gate=gate.name)
    except AlreadyExists:
        path = folder / ".github" / "workflows" / "conveyor-gate.yml"
    text = path.read_text(encoding="utf-8")
    if "pytest" not in text:
        step = "      - run: pip install -e . conveyor-mlops\n"
        text = text.replace(step, step + "      - name: Unit tests of the training code\n"
                                         "        run: pip install pytest && pytest tests -q\n")
        path.write_text(text, encoding="utf-8")
    config = folder / "conveyor.toml"
    if f"[gates.{gate.name}]" not in config.read_text(encoding="utf-8"):
        table = gate.model_dump(exclude_none=True, exclude={"name"})
        with config.open("a", encoding="utf-8") as handle:
            handle.write("\n" + tomli_w.dumps({"gates": {gate.name: table}}))
    tests = folder / "tests" / "test_training.py"
    tests.parent.mkdir(exist_ok=True)
    tests.write_text(TESTS, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
                           "--rootdir", str(folder), str(tests)],
                          cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    out(f"CI: `conveyor ci init --provider github` wrote {path.relative_to(folder)} (gate the pipeline's candidate "
        f"with [gates.{gate.name}], promote on main) plus a unit-test step; tests/test_training.py here: {last}",
        markup=False)
