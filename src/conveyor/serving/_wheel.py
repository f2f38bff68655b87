"""A wheel of the conveyor that is running, for a build context to carry.

``conveyor-mlops`` need not be on any package index the image can reach, so ``conveyor
build`` puts conveyor itself into the context as a wheel built from the installed source
(an editable install or a source checkout: ``pyproject.toml`` two folders above the
``conveyor`` package). The source is copied to a temporary folder first, so building leaves
nothing (``build/``, ``*.egg-info``) in the user's tree. Where no source is installed (a
plain wheel install), ``conveyor build --conveyor-requirement`` names a requirement the image
can reach instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

from conveyor.errors import InvalidInput
from conveyor.serving._requirements import CONVEYOR_DIST

_COPIED = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in")


def source_root() -> Path | None:
    """The folder holding conveyor's ``pyproject.toml``, when conveyor runs from source."""
    import conveyor

    root = Path(conveyor.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{CONVEYOR_DIST}"' in pyproject.read_text("utf-8"):
        return root
    return None


def build_wheel(dest: Path) -> Path:
    """Build conveyor's wheel into ``dest`` and return its path.

    Uses the installed setuptools without build isolation (no index needed) when it is
    there, pip's isolated build otherwise."""
    root = source_root()
    if root is None:
        raise InvalidInput(
            "conveyor is not installed from source, so no wheel of it can be built into the context",
            field="conveyor", value=CONVEYOR_DIST,
            hint="pass --conveyor-requirement with a requirement the image can install "
            f"(e.g. '{CONVEYOR_DIST}==<version>' from your package index)",
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-wheel-") as tmp:
        copy = Path(tmp) / "src-copy"
        copy.mkdir()
        for name in _COPIED:
            if (root / name).is_file():
                shutil.copy2(root / name, copy / name)
        shutil.copytree(root / "src" / "conveyor", copy / "src" / "conveyor",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp]
        if find_spec("setuptools") is not None and find_spec("wheel") is not None:
            command.append("--no-build-isolation")
        done = subprocess.run([*command, str(copy)], capture_output=True, text=True, check=False)
        built = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(built) != 1:
            raise InvalidInput(
                f"building conveyor's wheel failed: {(done.stderr or done.stdout).strip()[-2000:]}",
                field="conveyor", value=str(root), hint="pass --conveyor-requirement to name one instead",
            )
        target = dest / built[0].name
        shutil.move(str(built[0]), target)
    return target


__all__ = ["build_wheel", "source_root"]
