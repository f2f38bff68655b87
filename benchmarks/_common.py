"""Shared helpers of the benchmark scripts: peer virtualenvs, fresh-process timing, tables.

Benchmarks are not tests: they print numbers and ratios, they never fail a build.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
WORK = HERE / ".work"


def peer_python(name: str, requirements: list[str]) -> Path:
    """The python of a peer's own virtualenv (created on first use), so the peer never
    touches conveyor's dependencies."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        VENVS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        marker.write_text("\n".join(requirements))
    return python


def run_timed(python: Path | str, code: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a fresh process; it prints one JSON object of timings on its last line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    full_env.update(env or {})
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)], cwd=cwd, env=full_env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
