"""The quickstart driver: a project folder, a tracker, and the stages."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from conveyor.settings import CONFIG_FILE, Settings
from conveyor.store import mask_url


@dataclass
class Story:
    """What the stages share: the project, its tracker and what earlier stages produced."""

    folder: Path
    settings: Settings
    tracker: Any
    console: Console
    facts: dict[str, Any] = field(default_factory=dict)


Stage = Callable[[Story], None]


def _stages() -> list[tuple[str, Stage]]:
    from conveyor.quickstart import _data, _gate, _models, _monitor, _pipeline, _score, _serve, _track

    return [
        ("Track: train four models and compare them", _track.stage),
        ("Version: the data set, its schema and a validation", _data.stage),
        ("Orchestrate: the training pipeline, then again from the cache", _pipeline.stage),
        ("Package: the best model, its signature, ONNX", _models.stage),
        ("Gate: register, test against the champion, promote or veto", _gate.stage),
        ("Serve: the champion over REST", _serve.stage),
        ("Monitor: drift, an alert, retraining through the gate — the loop closes", _monitor.stage),
        ("Score: the ML Test Score of this project, from what it recorded", _score.stage),
    ]


def run(folder: Path, *, console: Console | None = None) -> Story:
    """Create (or reuse) ``folder`` as a conveyor project and run every stage in it."""
    from conveyor.tracking import Tracker, set_tracker

    console = console or Console()
    started = time.perf_counter()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_FILE
    if not config.exists():
        config.write_text(
            '[store]\nmetadata_url = "sqlite:///.conveyor/conveyor.db"\nartifacts_url = ".conveyor/artifacts"\n',
            encoding="utf-8",
        )
    settings = Settings.load(folder, env={})
    tracker = Tracker.from_settings(settings, create=True)
    set_tracker(tracker)
    story = Story(folder, settings, tracker, console)
    console.print(Panel.fit(f"conveyor quickstart in [bold]{folder}[/]", style="cyan"))
    previous = os.getcwd()
    os.chdir(folder)  # runs record the project's git commit, pipelines find the project, as from a shell in it
    try:
        console.print(commit(folder, "The quickstart project: its conveyor.toml"), markup=False)
        for number, (title, stage) in enumerate(_stages(), 1):
            console.rule(f"[bold]{number}. {title}")
            stage(story)
    finally:
        os.chdir(previous)
        tracker.flush()
        set_tracker(None)
        tracker.close()
    console.rule()
    from rich.markup import escape

    command = escape(conveyor_command())
    console.print(f"metadata:  {escape(mask_url(settings.metadata_url))}")
    console.print(f"artifacts: {escape(settings.artifacts_url)}")
    console.print(
        f"[green]done in {time.perf_counter() - started:.1f}s.[/] Explore it: "
        f"`cd {escape(str(folder))} && {command} runs list` · `{command} runs compare <id> <id>`",
        highlight=False,
        soft_wrap=True,
    )
    return story


GITIGNORE = ".conveyor/\n__pycache__/\n*.pyc\n*.html\n"


def commit(folder: Path, message: str) -> str:
    """Commit the project's files in its own git repository (made on first use), so every
    run trains from a recorded, clean commit (ML Test Score Model 1); says what it did."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        return "git is not installed: runs record no commit (ML Test Score Model 1 needs one)"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-c", "user.name=conveyor quickstart", "-c", "user.email=quickstart@conveyor.invalid",
             "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
            cwd=folder, capture_output=True, text=True, timeout=60, check=False)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != folder.resolve():
            git("init", "-q")
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text(GITIGNORE, encoding="utf-8")
        git("add", "-A")
        if not git("status", "--porcelain").stdout.strip():
            return "git: nothing new to commit"
        done = git("commit", "-q", "-m", message)
        if done.returncode != 0:
            return f"git commit failed: {done.stderr.strip()[:200]}"
        head = git("rev-parse", "--short", "HEAD").stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:  # the tour goes on; runs then record no clean commit
        return f"git failed ({type(exc).__name__}): runs record no clean commit"
    return f"git: committed {head} \"{message}\" (runs record this commit and a clean tree)"


def conveyor_command() -> str:
    """How to run this conveyor again from a shell: ``conveyor`` when that is the one on PATH,
    else the full path of the script next to this interpreter (a venv that is not
    activated), else ``python -m conveyor``."""
    import shlex
    import shutil
    import sys

    script = Path(sys.executable).with_name("conveyor")
    on_path = shutil.which("conveyor")
    if script.is_file():
        if on_path and Path(on_path).resolve() == script.resolve():
            return "conveyor"
        return shlex.quote(str(script))
    if on_path:
        return "conveyor"
    return f"{shlex.quote(sys.executable)} -m conveyor"
