"""Benchmark: the no-change check of a data folder from a fresh CLI process, conveyor vs DVC.

Not a test: prints medians and ratios. Issue 11, item 10 (target: < 0.3 s for 10,000
files; DVC ≈ 1.0 s). After one untimed ``conveyor data add`` / ``dvc add`` of the same
10,000 small files, each command runs ``--repeat`` times as a fresh process (interpreter
start-up included, as a user sees it):

  conveyor data status many              vs  dvc status
  conveyor data add many --name many     vs  dvc status   (unchanged: nothing stored)

DVC runs from its own virtualenv (benchmarks/.venvs/dvc).

Run: ``.venv/bin/python benchmarks/bench_status.py [--files 10000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"  # this checkout's conveyor, whatever the venv has installed
WORK = HERE / ".work" / "bench_status"
DVC_VENV = HERE / ".venvs" / "dvc"


def dvc() -> Path:
    exe = DVC_VENV / "bin" / "dvc"
    if not exe.exists():
        print("installing DVC into", DVC_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "-q", "dvc"], check=True)
    return exe


def run(cmd: list[str], cwd: Path, expect: str | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")} | {"DVC_NO_ANALYTICS": "1"}
    env["PYTHONPATH"] = str(SRC)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or (expect is not None and expect not in done.stdout + done.stderr):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    project, repo = WORK / "conveyor-project", WORK / "dvc-repo"
    for root in (project, repo):
        for i in range(args.files):
            sub = root / "many" / f"d{i % 100:02}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{i:05}.bin").write_bytes(i.to_bytes(4, "little") * 256)
    (project / "conveyor.toml").write_text("", encoding="utf-8")
    conveyor = [sys.executable, "-m", "conveyor"]
    exe = str(dvc())
    run([*conveyor, "data", "add", "many", "--name", "many"], project, "added")
    run([exe, "init", "--no-scm", "-q"], repo)
    run([exe, "add", "-q", "many"], repo)
    cases = {
        "conveyor data status many": ([*conveyor, "data", "status", "many"], project, "unchanged"),
        "conveyor data add many (unchanged)": ([*conveyor, "data", "add", "many", "--name", "many"], project, "unchanged"),
        "dvc status": ([exe, "status"], repo, "up to date"),
        "python -c pass (interpreter start-up)": ([sys.executable, "-c", "pass"], project, None),
    }
    medians = {}
    for label, (cmd, cwd, expect) in cases.items():
        run(cmd, cwd, expect)  # warm the page cache
        medians[label] = statistics.median(run(cmd, cwd, expect) for _ in range(args.repeat))
    print(f"\n{args.files:,} unchanged files; median of {args.repeat} fresh processes; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    width = max(map(len, medians))
    for label, value in medians.items():
        ratio = f"{medians['dvc status'] / value:5.1f}× vs dvc status" if label.startswith("conveyor") else ""
        print(f"{label:{width}}  {value:6.3f}s  {ratio}")


if __name__ == "__main__":
    main()
