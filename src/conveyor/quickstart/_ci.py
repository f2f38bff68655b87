"""Quickstart stage part: the project's CI. ``conveyor ci init --provider github`` writes the
gate workflow (pull requests gate the training pipeline's candidate, main promotes it); a
unit-test step runs the project's tests of its training code, which this writes in
``tests/test_training.py`` and runs once here (each ``test_*`` function, in this process:
a pytest subprocess would cost seconds of imports), so the file is known to pass. The
gate the workflow names is written into ``conveyor.toml`` as ``[gates.quickstart]``."""

from __future__ import annotations

import runpy
from typing import Any

from conveyor.quickstart._run import Story

PIPELINE = "conveyor.quickstart._pipeline:training"
TESTS = '''"""Unit tests of the quickstart's training code (run in CI by .github/workflows/conveyor-gate.yml)."""
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
    from conveyor.ci._init import install_command
    from conveyor.errors import AlreadyExists

    out = story.console.print
    folder = story.folder
    try:
        path = write_workflow(folder, "github", pipeline=PIPELINE, gate=gate.name)
    except AlreadyExists:
        path = folder / ".github" / "workflows" / "conveyor-gate.yml"
    text = path.read_text(encoding="utf-8")
    if "pytest" not in text:
        # after the install step as `ci init` wrote it (it depends on the project's layout)
        step = f"      - run: {install_command(folder)}\n"
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
    last = _run_tests(tests)
    out(f"CI: `conveyor ci init --provider github` wrote {path.relative_to(folder)} (gate the pipeline's candidate "
        f"with [gates.{gate.name}], promote on main) plus a pytest step; tests/test_training.py run here: {last}",
        markup=False)


def _run_tests(path: Any) -> str:
    """Call every ``test_*`` function of ``path``; say how many passed or which failed."""
    try:
        namespace = runpy.run_path(str(path))
    except ImportError as exc:  # pytest is a test tool, not a conveyor dependency
        return f"not run here ({exc})"
    names = sorted(n for n in namespace if n.startswith("test_") and callable(namespace[n]))
    failed = []
    for name in names:
        try:
            namespace[name]()
        except Exception as exc:  # a failing test is reported, not raised: the tour goes on
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return f"{len(names) - len(failed)} of {len(names)} passed" + (f"; FAILED {'; '.join(failed)}" if failed else "")
