"""The public surface is small, sorted and pinned; layers import only downwards; importing
conveyor stays light."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor

PUBLIC_PACKAGES = [
    "conveyor",
    "conveyor.blobs",
    "conveyor.ci",
    "conveyor.data",
    "conveyor.entities",
    "conveyor.gates",
    "conveyor.importers",
    "conveyor.models",
    "conveyor.monitoring",
    "conveyor.pipelines",
    "conveyor.registry",
    "conveyor.server",
    "conveyor.serving",
    "conveyor.store",
    "conveyor.tracking",
]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert getattr(module, attr) is not None


def test_top_level_api_is_pinned() -> None:
    assert conveyor.__all__ == [
        "ActiveRun", "ConveyorError", "NotFound", "Settings", "Tracker", "__version__", "active_run", "autolog",
        "end_run", "flush", "get_metric_history", "get_run", "log_artifact", "log_artifacts", "log_dict",
        "log_figure", "log_input", "log_metric", "log_metrics", "log_param", "log_params", "log_text",
        "pipeline", "search_runs", "set_experiment", "set_tag", "set_tags", "start_run", "step",
    ]


def test_import_conveyor_loads_nothing_heavy() -> None:
    code = (
        "import sys, json, conveyor; "
        "print(json.dumps(sorted(m for m in ('sqlalchemy', 'pandas', 'numpy', 'sklearn', 'pydantic', 'alembic', "
        "'pyarrow', 'fsspec', 'typer', 'rich') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_layers_import_only_downwards() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    done = subprocess.run([lint, "--no-cache"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
