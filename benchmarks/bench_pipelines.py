"""Benchmark: a 10-step pipeline with every step cached, against `dvc repro` with nothing to do.

Both sides do the same trivial work: step i reads step i-1's small JSON output and writes
its own. After one full run, we time a run where every step is cached:

- conveyor, Python API in a warm process (``conveyor.pipelines.run``), best of 5;
- conveyor, CLI end to end (``conveyor pipeline run``, a fresh process), best of 5;
- DVC, ``dvc repro`` with nothing to do (a fresh process), best of 5.

Wall and CPU seconds are both printed: on a shared machine wall time includes waiting.

DVC is installed into its own virtualenv under ``benchmarks/.venvs/dvc`` on first use.
Run: ``.venv/bin/python benchmarks/bench_pipelines.py``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venvs" / "dvc"
STEPS = 10
TARGET_S = 1.0

FLOW = textwrap.dedent(
    """
    import conveyor.pipelines as cp

    @cp.step
    def step_0() -> dict:
        return {"step": 0, "total": 0}

    """
) + "".join(
    textwrap.dedent(
        f"""
        @cp.step
        def step_{i}(previous: dict) -> dict:
            return {{"step": {i}, "total": previous["total"] + {i}}}
        """
    )
    for i in range(1, STEPS)
) + textwrap.dedent(
    """

    @cp.pipeline
    def flow():
        out = step_0()
    """
) + "".join(f"    out = step_{i}(out)\n" for i in range(1, STEPS))

DVC_STAGE = (
    "python3 -c \"import json,sys; p=json.load(open('out{prev}.json'))['total'] if {i} else 0; "
    "json.dump({{'step': {i}, 'total': p + {i}}}, open('out{i}.json', 'w'))\""
)


def _best(times: list[float]) -> float:
    return min(times)


def _timed(cmd: list[object], **kwargs: object) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and CPU seconds (user + system) of one child process."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def bench_conveyor(folder: Path) -> tuple[float, float, float]:
    folder.mkdir()
    (folder / "conveyor.toml").write_text("", encoding="utf-8")
    (folder / "bench_flow.py").write_text(FLOW, encoding="utf-8")
    conveyor = Path(sys.executable).with_name("conveyor")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    first = subprocess.run([conveyor, "pipeline", "run", "bench_flow:flow"], cwd=folder, env=env,
                           capture_output=True, text=True)
    if first.returncode != 0:
        raise SystemExit(f"first conveyor run failed:\n{first.stdout}\n{first.stderr}")
    cli, cli_cpu = [], []
    for _ in range(5):
        wall, cpu, done = _timed([conveyor, "pipeline", "run", "bench_flow:flow"], cwd=folder, env=env)
        cli.append(wall)
        cli_cpu.append(cpu)
        if f"{STEPS}/{STEPS} steps cached" not in done.stdout:
            raise SystemExit(f"expected a fully cached run:\n{done.stdout}\n{done.stderr}")
    api_script = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, ".")
        import conveyor.pipelines as cp
        import bench_flow
        from conveyor.tracking import get_tracker
        tracker = get_tracker()
        times = []
        for _ in range(6):
            t = time.perf_counter()
            r = cp.run(bench_flow.flow, tracker=tracker)
            times.append(time.perf_counter() - t)
            assert len(r.cached) == len(r.steps), r.steps
        print(min(times[1:]))
        """
    )
    api = subprocess.run([sys.executable, "-c", api_script], cwd=folder, env=env, capture_output=True, text=True)
    if api.returncode != 0:
        raise SystemExit(f"API run failed:\n{api.stderr}")
    return float(api.stdout.strip().splitlines()[-1]), _best(cli), _best(cli_cpu)


def _dvc() -> Path:
    dvc = VENV / "bin" / "dvc"
    if not dvc.exists():
        print(f"installing DVC into {VENV} (once)…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([VENV / "bin" / "pip", "install", "-q", "dvc"], check=True)
    return dvc


def bench_dvc(folder: Path) -> tuple[float, float, str]:
    dvc = _dvc()
    version = subprocess.run([dvc, "--version"], capture_output=True, text=True).stdout.strip()
    folder.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True, env=env)
    subprocess.run([dvc, "init", "-q"], cwd=folder, check=True, env=env)
    lines = ["stages:"]
    for i in range(STEPS):
        lines.append(f"  step_{i}:")
        lines.append(f"    cmd: {DVC_STAGE.format(i=i, prev=i - 1)!s}".replace("cmd: ", "cmd: >-\n      ", 1))
        if i:
            lines.append(f"    deps: [out{i - 1}.json]")
        lines.append(f"    outs: [out{i}.json]")
    (folder / "dvc.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = subprocess.run([dvc, "repro", "-q"], cwd=folder, env=env, capture_output=True, text=True)
    if first.returncode != 0:
        raise SystemExit(f"dvc repro failed:\n{first.stdout}\n{first.stderr}")
    times, cpus = [], []
    for _ in range(5):
        wall, cpu, done = _timed([dvc, "repro"], cwd=folder, env=env)
        times.append(wall)
        cpus.append(cpu)
        if done.returncode != 0 or "didn't change" not in done.stdout + done.stderr:
            raise SystemExit(f"dvc repro was not a no-op:\n{done.stdout}\n{done.stderr}")
    return _best(times), _best(cpus), version


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        api, cli, cli_cpu = bench_conveyor(Path(tmp) / "conveyor")
        dvc, dvc_cpu, version = bench_dvc(Path(tmp) / "dvc")
    print()
    print(f"{STEPS}-step pipeline, every step cached (best of 5; lower is better)")
    print(f"{'tool':44} {'wall s':>8} {'cpu s':>8} {'wall vs dvc':>12}")
    rows = [
        ("conveyor, Python API (warm process)", api, float("nan")),
        ("conveyor pipeline run (CLI, fresh process)", cli, cli_cpu),
        (f"dvc repro, nothing to do (DVC {version})", dvc, dvc_cpu),
    ]
    for label, seconds, cpu in rows:
        print(f"{label:44} {seconds:8.3f} {cpu:8.3f} {dvc / seconds:11.1f}×")
    verdict = "met" if cli < TARGET_S else "MISSED"
    print(f"target: under {TARGET_S:.0f} s end to end → CLI {cli:.3f} s wall ({verdict}), "
          f"{cli_cpu:.3f} s CPU; API {api:.3f} s")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (wall > CPU means waiting for the CPU)")


if __name__ == "__main__":
    main()
