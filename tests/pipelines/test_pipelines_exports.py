"""The public surface of conveyor.pipelines is pinned, and defining steps stays light."""

from __future__ import annotations

import subprocess
import sys

import conveyor.pipelines

EXPECTED = [
    "ENTRY_POINT_GROUP", "Graph", "Handle", "Materializer", "Pipeline", "PipelineFailed", "PipelineResult",
    "PipelineSettings", "Step", "StepOptions", "StepResult", "SweepResult", "dataset", "get_materializer",
    "materializer_for", "materializer_table", "pipeline", "register_materializer", "run", "step", "sweep",
    "train_candidate",
]


def test_exported_members() -> None:
    assert conveyor.pipelines.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(conveyor.pipelines, name) is not None


def test_defining_steps_does_not_import_the_stores() -> None:
    code = "import sys, conveyor.pipelines; print('sqlalchemy' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
