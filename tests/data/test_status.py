"""``conveyor data status`` and the no-change fast path of ``data add`` (issue 11, item 10):
right answers first (never "unchanged" when something changed), then few imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# `data status` compares with the local stores (its quick path reads the SQLite file directly).
pytestmark = pytest.mark.usefixtures("embedded_only")
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.data._status import quick_unchanged

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def folder(project: Path) -> Path:
    root = project / "images"
    for i in range(30):
        (root / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 3}" / f"{i}.bin").write_bytes(f"image {i}".encode())
    code, out = invoke("data", "add", "images", "--name", "imgs")
    assert code == 0 and "added" in out, out
    return root


def _status(*extra: str) -> dict[str, object]:
    code, out = invoke("data", "status", "images", "--json", *extra)
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def test_unchanged_folder(folder: Path) -> None:
    quick = quick_unchanged(folder, "imgs")
    assert quick is not None and quick.ref == "data:/imgs@1"
    assert quick_unchanged(folder) is not None  # the data set is found from the folder
    assert _status()["state"] == "unchanged"
    code, out = invoke("data", "add", "images", "--name", "imgs")
    assert code == 0 and "unchanged: data:/imgs@1" in out


def test_changes_are_listed_and_never_called_unchanged(folder: Path) -> None:
    (folder / "d0" / "new.bin").write_bytes(b"new")
    (folder / "d1" / "1.bin").unlink()
    (folder / "d2" / "2.bin").write_bytes(b"IMAGE 2")  # same size, new content
    assert quick_unchanged(folder, "imgs") is None
    report = _status("--name", "imgs")
    assert report["state"] == "changed"
    assert report["added"] == ["d0/new.bin"] and report["removed"] == ["d1/1.bin"]
    assert report["modified"] == ["d2/2.bin"]
    code, out = invoke("data", "add", "images", "--name", "imgs")
    assert code == 0 and "added data:/imgs@2" in out
    assert _status()["state"] == "unchanged"


def test_touched_but_identical_file_is_unchanged_after_hashing(folder: Path) -> None:
    target = folder / "d0" / "0.bin"
    os.utime(target, (1, 1))
    assert quick_unchanged(folder, "imgs") is None  # stat changed: the fast path cannot tell
    assert _status()["state"] == "unchanged"


def test_a_newer_version_from_elsewhere_makes_the_folder_changed(folder: Path, project: Path) -> None:
    other = project / "other"
    other.mkdir()
    (other / "x.bin").write_bytes(b"x")
    code, out = invoke("data", "add", "other", "--name", "imgs")
    assert code == 0 and "imgs@2" in out
    assert quick_unchanged(folder, "imgs") is None
    assert _status("--name", "imgs")["state"] == "changed"


def test_a_collected_manifest_is_not_trusted(folder: Path, project: Path) -> None:
    quick = quick_unchanged(folder, "imgs")
    assert quick is not None
    code, out = invoke("data", "show", "imgs@1", "--json")
    digest = json.loads(out)["digest"].partition(":")[2]
    manifest = project / ".conveyor" / "artifacts" / digest[:2] / digest[2:]
    manifest.unlink()
    assert quick_unchanged(folder, "imgs") is None


def test_a_folder_never_added_is_new(project: Path) -> None:
    (project / "images").mkdir()
    (project / "images" / "a.txt").write_text("a")
    report = _status()
    assert report["state"] == "new" and report["added"] == ["a.txt"]


def test_no_change_answer_imports_neither_sqlalchemy_nor_pandas(folder: Path, project: Path) -> None:
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from conveyor.cli import app\n"
        "for args in (['data', 'add', 'images', '--name', 'imgs'], ['data', 'status', 'images']):\n"
        "    out = CliRunner().invoke(app, args).output\n"
        "    assert 'unchanged' in out, out\n"
        "print(sorted(m for m in ('sqlalchemy', 'pandas', 'pyarrow', 'boto3', 's3fs') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _entry(project: Path, *args: str, show_modules: bool = False) -> subprocess.CompletedProcess[str]:
    """The ``conveyor`` command as installed (its entry point), in a fresh process."""
    script = (
        "import sys\n"
        f"sys.argv = ['conveyor', *{list(args)!r}]\n"
        "from conveyor._entry import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    sys.stdout.flush()\n"
        + ("    print('MODULES', sorted(m for m in ('typer', 'click', 'rich', 'sqlalchemy', 'pandas') "
           "if m in sys.modules), file=sys.stderr)\n" if show_modules else "")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("args", [
    ("data", "status", "images"),
    ("data", "status", "images/", "--json"),
    ("data", "status", "--name=imgs", "images"),
    ("data", "add", "images", "-n", "imgs"),
])
def test_the_entry_point_answers_a_no_change_check_as_the_full_cli_does_without_its_framework(
    folder: Path, project: Path, args: tuple[str, ...]
) -> None:
    fast = _entry(project, *args, show_modules=True)
    assert fast.returncode == 0, fast.stderr
    assert "MODULES []" in fast.stderr  # no typer, click, rich, SQLAlchemy or pandas
    code, full = invoke(*args)
    assert code == 0
    assert fast.stdout == full


@pytest.mark.parametrize("args", [
    ("data", "status", "images", "--help"),  # not a check: the full CLI's help
    ("data", "add", "images"),  # no name: the full CLI's usage error
    ("data", "add", "images", "-n", "imgs", "--json"),  # add --json prints the whole version
    ("data", "status", "images", "--name", "other"),  # unknown data set: the full CLI's error
])
def test_the_entry_point_leaves_everything_else_to_the_full_cli(folder: Path, project: Path, args: tuple[str, ...]) -> None:
    fast = _entry(project, *args, show_modules=True)
    assert "'typer'" in fast.stderr, fast.stderr
    code, full = invoke(*args)
    assert fast.returncode == code
    assert fast.stdout.split() == full.split() or code != 0


def test_the_entry_point_reports_a_changed_folder_through_the_full_cli(folder: Path, project: Path) -> None:
    (folder / "d0" / "0.bin").write_bytes(b"changed")
    fast = _entry(project, "data", "status", "images", show_modules=True)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout.startswith("changed: images against data:/imgs@1") and "~ d0/0.bin" in fast.stdout
