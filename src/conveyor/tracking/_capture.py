"""What every run records without being asked: code version, entry point, environment.

Everything here is computed once per process (git and the package list do not change
under a running training script often enough to pay a subprocess per run).
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    branch: str | None
    dirty: bool | None


@cache
def git_info(folder: str) -> GitInfo:
    """Commit, branch and dirty flag of the repository holding ``folder`` (all None outside one)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return GitInfo(None, None, None)
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit, branch if branch != "HEAD" else None, bool(status) if status is not None else None)


_DIST = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._]*?)-(?P<version>[0-9][^-]*?)\.(?:dist|egg)-info$")


@cache
def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted, one per line.

    Read from the ``*.dist-info`` folder names on ``sys.path`` (their names carry the
    normalised name and version): a directory listing, not a parse of every METADATA file,
    which keeps it to milliseconds with hundreds of packages installed.
    """
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST.match(name)
            if match:
                key = re.sub(r"[-_.]+", "-", match["name"]).lower()
                seen.setdefault(key, f"{key}=={match['version']}")
    return "\n".join(seen[k] for k in sorted(seen)) + "\n"


@cache
def user_and_host() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return user, socket.gethostname()


def entry_point() -> tuple[str | None, str | None]:
    """The script (or ``-m`` module) that runs, and the whole command line."""
    argv = list(sys.argv)
    if not argv or argv == [""]:
        return None, None
    script = argv[0]
    if script and script not in ("-c", "-m") and Path(script).exists():
        script = str(Path(script).resolve())
    return script or None, shlex.join([sys.executable, *argv])


def python_version() -> str:
    return platform.python_version()
