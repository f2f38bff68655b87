"""The documentation cannot drift from the code: the site builds in strict mode, every
``python`` and ``bash`` block of every page runs (in page order, in a fresh project), and
every ``conveyor …`` line of a ``text`` block parses against the real command line."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)

# Runs the blocks of one page in order: python blocks in one namespace, bash blocks in a
# shell, in the working directory the test made.
DRIVER = r"""
import json, subprocess, sys
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__docs__"}
for number, (lang, code) in enumerate(blocks, 1):
    try:
        if lang == "python":
            exec(compile(code, f"<block {number}>", "exec"), namespace)
        else:
            subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True)
    except BaseException as error:
        print(f"block {number} ({lang}) failed: {error!r}\n{code}", file=sys.stderr)
        raise
"""


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


RUNNABLE = [p for p in PAGES if any(lang in ("python", "bash") for lang, _ in blocks(p))]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONVEYOR_") or k in ("CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("GIT_AUTHOR_NAME", "docs")
    env.setdefault("GIT_AUTHOR_EMAIL", "docs@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "docs")
    env.setdefault("GIT_COMMITTER_EMAIL", "docs@example.invalid")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(DOCS)) for p in RUNNABLE])
def test_every_python_and_bash_block_runs(page: Path, tmp_path: Path) -> None:
    runnable = [(lang, code) for lang, code in blocks(page) if lang in ("python", "bash")]
    work = tmp_path / "project"
    work.mkdir()
    (work / "conveyor.toml").write_text("[tracking]\nflush_interval = 0.05\n", encoding="utf-8")
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps(runnable), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", DRIVER, str(script)], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{page.relative_to(DOCS)}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def _command_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for lang, code in blocks(page):
            if lang != "text":
                continue
            for line in code.splitlines():
                line = line.split(" # ")[0].strip()
                if line.startswith("conveyor ") or ".venv/bin/conveyor " in line:
                    command = line[line.index("conveyor "):]
                    found.append((str(page.relative_to(DOCS)), command))
    return found


COMMAND_LINES = _command_lines()


def _parse(argv: list[str]) -> None:
    """Resolve ``argv`` through the command tree and parse its options and arguments, as
    running it would, without invoking anything."""
    import typer.main

    from conveyor.cli import app

    command: Any = typer.main.get_command(app)
    ctx = command.make_context("conveyor", list(argv), resilient_parsing=False)
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=False)


@pytest.mark.parametrize(("page", "line"), COMMAND_LINES, ids=[f"{p}: {c}" for p, c in COMMAND_LINES])
def test_every_command_line_shown_parses(page: str, line: str) -> None:
    argv = shlex.split(line)[1:]
    try:
        _parse(argv)
    except Exception as error:  # click's UsageError and its kin
        pytest.fail(f"{page}: `{line}` does not parse: {error}")


@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    env = {**_env(), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("conveyor runs list", "conveyor score record", "conveyor ci check", "conveyor serve"):
        assert command in cli, command  # generated from the command tree
    rules = (tmp_path / "site" / "reference" / "rules" / "index.html").read_text(encoding="utf-8")
    for metric in ("drift_share", "skew_mismatch_rate", "p95_latency_ms"):
        assert metric in rules, metric  # generated from the rule grammar
    rest = (tmp_path / "site" / "reference" / "rest" / "index.html").read_text(encoding="utf-8")
    from conveyor.server.api import create_api

    for path in create_api(None).openapi()["paths"]:
        assert f"/api/v1{path}" in rest, path  # generated from the OpenAPI document
