"""Benchmarks of pipelines: (1) a 4-step wine pipeline against a plain Python script doing the
same work; (2) a 10-step pipeline with every step cached, against `dvc repro` with nothing to do.

(1) The pipeline load → split → train (RandomForest, 100 trees) → evaluate on scikit-learn's
wine table (178 rows), with its candidate and evaluation declared. The plain script does the
same computations and saves the model (skops) and the metrics (JSON), as the pipeline does.
Cold: a fresh process per run, nothing cached (best of 3). Warm: repeated in one process
after a first run (best of 5; conveyor with ``cache=False``, its fork server warm). Cached: a
fully cached run from the API in a warm process. Sweep: 4 points of ``n_estimators`` in one
fresh process, against one conveyor run (cold) and against 4 sequential plain-script runs.

Both sides do the same trivial work: step i reads step i-1's small JSON output and writes
its own. After one full run, we time a run where every step is cached:

- conveyor, Python API in a warm process (``conveyor.pipelines.run``), best of 5;
- conveyor, CLI end to end (``conveyor pipeline run``, a fresh process), best of 5;
- DVC, ``dvc repro`` with nothing to do (a fresh process), best of 5.

Wall and CPU seconds are both printed: on a shared machine wall time includes waiting.

DVC is installed into its own virtualenv under ``benchmarks/.venvs/dvc`` on first use.
Run: ``.venv/bin/python benchmarks/bench_pipelines.py`` (``--wine-only`` skips the DVC part)
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


WINE_STEPS = textwrap.dedent(
    """
    import json
    from pathlib import Path

    FEATURES = None

    def load_frame():
        from sklearn.datasets import load_wine
        return load_wine(as_frame=True).frame

    def split_frame(frame):
        from sklearn.model_selection import train_test_split
        return tuple(train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"]))

    def fit(frame, n_estimators=100):
        from sklearn.ensemble import RandomForestClassifier
        X, y = frame.drop(columns="target"), frame["target"]
        return RandomForestClassifier(n_estimators=n_estimators, random_state=0, n_jobs=1).fit(X, y)

    def score(model, frame):
        from sklearn.metrics import accuracy_score, f1_score
        X, y = frame.drop(columns="target"), frame["target"]
        predicted = model.predict(X)
        return {"accuracy": float(accuracy_score(y, predicted)), "f1_macro": float(f1_score(y, predicted, average="macro"))}
    """
)

WINE_FLOW = WINE_STEPS + textwrap.dedent(
    """
    import conveyor.pipelines as cp

    @cp.step
    def load():
        return load_frame()

    @cp.step(outputs=("train", "test"))
    def split(frame):
        return split_frame(frame)

    @cp.step
    def train(frame, n_estimators: int = 100):
        return fit(frame, n_estimators)

    @cp.step(metrics=True)
    def evaluate(model, frame) -> dict:
        return score(model, frame)

    @cp.pipeline(candidate="train", evaluation="evaluate")
    def wine(n_estimators: int = 100):
        train_rows, test_rows = split(load())
        evaluate(train(train_rows, n_estimators=n_estimators), test_rows)
    """
)

PLAIN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, ".")
    from wine_steps import fit, load_frame, score, split_frame

    def work(n_estimators=100, out=Path("plain-out")):
        import skops.io
        train, test = split_frame(load_frame())
        model = fit(train, n_estimators)
        metrics = score(model, test)
        out.mkdir(exist_ok=True)
        skops.io.dump(model, out / "model.skops")
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    if __name__ == "__main__":
        work(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    """
)

CONVEYOR_COLD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, ".")
    import conveyor.pipelines as cp
    import wine_flow
    result = cp.run(wine_flow.wine, cache=False)
    assert result.ok and result.candidate, result.steps
    """
)

CONVEYOR_SWEEP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, ".")
    import conveyor.pipelines as cp
    import wine_flow
    result = cp.sweep(wine_flow.wine, {"n_estimators": [50, 100, 150, 200]}, metric="accuracy", cache=False)
    assert all(r.ok for _, r, _ in result.points), result.points
    """
)

WARM = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, ".")
    import conveyor.pipelines as cp
    import plain, wine_flow
    plain.work()
    result = cp.run(wine_flow.wine, cache=False)
    plain_times, conveyor_times, cached_times = [], [], []
    for _ in range(5):
        t = time.perf_counter(); plain.work(); plain_times.append(time.perf_counter() - t)
        t = time.perf_counter(); r = cp.run(wine_flow.wine, cache=False); conveyor_times.append(time.perf_counter() - t)
        assert r.ok
        t = time.perf_counter(); r = cp.run(wine_flow.wine); cached_times.append(time.perf_counter() - t)
        assert len(r.cached) == 4, r.cached
    print(min(plain_times), min(conveyor_times), min(cached_times))
    """
)


def bench_wine(folder: Path) -> dict[str, float]:
    """Seconds of each measurement of the wine pipeline (see the module docstring)."""
    folder.mkdir()
    (folder / "conveyor.toml").write_text("", encoding="utf-8")
    for name, text in (("wine_steps.py", WINE_STEPS), ("wine_flow.py", WINE_FLOW), ("plain.py", PLAIN),
                       ("cold.py", CONVEYOR_COLD), ("sweep.py", CONVEYOR_SWEEP), ("warm.py", WARM)):
        (folder / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}

    def best_of(n: int, cmd: list[object]) -> float:
        times = []
        for _ in range(n):
            wall, _, done = _timed(cmd, cwd=folder, env=env)
            if done.returncode != 0:
                raise SystemExit(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")
            times.append(wall)
        return _best(times)

    out = {
        "plain_cold": best_of(3, [sys.executable, "plain.py"]),
        "conveyor_cold": best_of(3, [sys.executable, "cold.py"]),
        "sweep_cold": best_of(2, [sys.executable, "sweep.py"]),
    }
    sequential = 0.0
    for n in (50, 100, 150, 200):
        sequential += _timed([sys.executable, "plain.py", str(n)], cwd=folder, env=env)[0]
    out["plain_4_sequential"] = sequential
    warm = subprocess.run([sys.executable, "warm.py"], cwd=folder, env=env, capture_output=True, text=True)
    if warm.returncode != 0:
        raise SystemExit(f"warm runs failed:\n{warm.stderr}")
    out["plain_warm"], out["conveyor_warm"], out["cached_api"] = map(float, warm.stdout.split()[-3:])
    return out


def report_wine(t: dict[str, float]) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print()
    print("4-step wine pipeline (load → split → train RandomForest → evaluate, 178 rows) vs a plain script")
    print(f"{'measurement':58} {'seconds':>8} {'ratio':>7}  target")
    rows = [
        ("plain script, fresh process (cold)", t["plain_cold"], None, ""),
        ("conveyor first run, fresh process (cold)", t["conveyor_cold"], t["conveyor_cold"] / t["plain_cold"],
         f"≤ 1.5× cold plain: {verdict(t['conveyor_cold'] <= 1.5 * t['plain_cold'])}"),
        ("plain work, warm process", t["plain_warm"], None, ""),
        ("conveyor run without cache, warm process", t["conveyor_warm"], t["conveyor_warm"] / t["plain_warm"],
         "vs warm plain (no target; stores every output)"),
        ("conveyor fully cached run, API, warm process", t["cached_api"], None,
         f"< 0.3 s: {verdict(t['cached_api'] < 0.3)}"),
        ("conveyor 4-point sweep, fresh process", t["sweep_cold"], t["sweep_cold"] / t["conveyor_cold"],
         f"vs one cold run, ≤ 2×: {verdict(t['sweep_cold'] <= 2 * t['conveyor_cold'])}"),
        ("4 sequential plain-script runs, fresh processes", t["plain_4_sequential"],
         t["sweep_cold"] / t["plain_4_sequential"],
         f"sweep vs these, ≤ 0.6×: {verdict(t['sweep_cold'] <= 0.6 * t['plain_4_sequential'])}"),
    ]
    for label, seconds, ratio, target in rows:
        print(f"{label:58} {seconds:8.3f} {'' if ratio is None else f'{ratio:6.2f}×':>7}  {target}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


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
        report_wine(bench_wine(Path(tmp) / "wine"))
        if "--wine-only" in sys.argv:
            return
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
