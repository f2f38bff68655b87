"""Benchmark: ``conveyor data add`` of many small files, idle and under concurrent disk load.

Not a test: prints a table with ratios. Issue 11, item 6: batched durability used to call
``syncfs(2)``, which also waits for every other process's dirty pages; now a batch
``fdatasync``s only its own objects (bounded thread pool) and fsyncs their folders. The
same folder is added by

- conveyor from this checkout,
- conveyor from a baseline commit (default: the merge base with ``main``, extracted with
  ``git archive`` into a temp folder: "today's code"),
- DVC (``dvc add``, from its own virtualenv benchmarks/.venvs/dvc),

first on an idle disk, then while a background ``dd`` keeps writing a large file to the
same filesystem (the load a training job writing checkpoints puts on a shared disk). Each
tool adds its own copy of the files into a fresh project, CLI wall time incl. start-up.
DVC does not make its cache durable at all (no fsync); conveyor's figures include it.

Run: ``.venv/bin/python benchmarks/bench_durability.py [--files 10000] [--dd-mib 3072] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "bench_durability"
DVC_VENV = HERE / ".venvs" / "dvc"


def dvc() -> Path:
    exe = DVC_VENV / "bin" / "dvc"
    if not exe.exists():
        print("installing DVC into", DVC_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "-q", "dvc"], check=True)
    return exe


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")} | (env or {})
    full["DVC_NO_ANALYTICS"] = "1"
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def make_files(folder: Path, count: int) -> None:
    for i in range(count):
        sub = folder / f"d{i % 100:02}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05}.bin").write_bytes(os.urandom(10 * 1024))


class DiskLoad:
    """A background ``dd`` writing ``mib`` MiB (buffered: dirty pages for a sync to wait on),
    restarted until stopped."""

    def __init__(self, folder: Path, mib: int) -> None:
        self.folder, self.mib = folder, mib
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DiskLoad:
        self.folder.mkdir(parents=True, exist_ok=True)
        script = (f"while true; do dd if=/dev/zero of={self.folder}/load.bin bs=1M count={self.mib} "
                  f"status=none; rm -f {self.folder}/load.bin; done")
        self.proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
        time.sleep(3)  # let dirty pages build up
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 15)
        self.proc.wait()
        (self.folder / "load.bin").unlink(missing_ok=True)
        subprocess.run(["sync"], check=True)


def flush_only(count: int, loaded: bool, mib: int) -> dict[str, float]:
    """The flush step alone, in-process: ``count`` fresh 10 KiB objects made durable by
    syncfs(2) (the baseline's batch) and by this checkout's ``flush_files`` (fdatasync pool
    + folder fsyncs)."""
    import ctypes

    sys.path.insert(0, str(REPO / "src"))
    from conveyor.blobs._batch import flush_files

    out: dict[str, float] = {}
    for how in ("syncfs", "fdatasync pool"):
        root = WORK / f"flush-{how.replace(' ', '-')}"
        shutil.rmtree(root, ignore_errors=True)
        files = []
        for i in range(count):
            folder = root / f"{i % 256:02x}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}").write_bytes(os.urandom(10 * 1024))
            files.append(folder / f"{i}")
        context = DiskLoad(WORK / "load", mib) if loaded else None
        if context is not None:
            context.__enter__()
        try:
            start = time.perf_counter()
            if how == "syncfs":
                fd = os.open(root, os.O_RDONLY)
                ctypes.CDLL(None, use_errno=True).syncfs(fd)
                os.close(fd)
            else:
                flush_files(root, files)
            out[how] = time.perf_counter() - start
        finally:
            if context is not None:
                context.__exit__(None, None, None)
        shutil.rmtree(root)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--dd-mib", type=int, default=3072)
    parser.add_argument("--baseline", default=None, help="git revision of today's code (default: merge base with main)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each round runs every case once (interleaved)")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    source = WORK / "source"
    make_files(source, args.files)
    rev = args.baseline or subprocess.run(
        ["git", "-C", str(REPO), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
    ).stdout.strip()
    exe = dvc()
    runs: dict[tuple[str, str], list[float]] = {}
    counter = [0]
    with tempfile.TemporaryDirectory(prefix="conveyor-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sides = {"conveyor (this checkout)": REPO / "src", f"conveyor ({rev[:10]})": Path(tmp) / "src"}
        def measure(key: tuple[str, str], cmd: list[str], cwd: Path, env: dict[str, str] | None) -> None:
            if key[1] == "idle":
                runs.setdefault(key, []).append(timed(cmd, cwd, env))
            else:
                with DiskLoad(WORK / "load", args.dd_mib):
                    runs.setdefault(key, []).append(timed(cmd, cwd, env))

        for _ in range(args.repeat):
            for condition in ("idle", "under dd load"):
                for label, src in sides.items():
                    counter[0] += 1
                    project = WORK / f"p-{counter[0]}"
                    project.mkdir()
                    (project / "conveyor.toml").write_text("", encoding="utf-8")
                    shutil.copytree(source, project / "many")
                    subprocess.run(["sync"], check=True)
                    cmd = [sys.executable, "-m", "conveyor", "data", "add", "many", "--name", "many"]
                    measure((label, condition), cmd, project, {"PYTHONPATH": str(src)})
                    shutil.rmtree(project)
                counter[0] += 1
                repo = WORK / f"dvc-{counter[0]}"
                repo.mkdir()
                shutil.copytree(source, repo / "many")
                timed([str(exe), "init", "--no-scm", "-q"], repo)
                subprocess.run(["sync"], check=True)
                measure(("dvc add", condition), [str(exe), "add", "-q", "many"], repo, None)
                shutil.rmtree(repo)
    results = {key: statistics.median(values) for key, values in runs.items()}
    flushes: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.repeat):
        for loaded in (False, True):
            for how, seconds in flush_only(args.files, loaded, args.dd_mib).items():
                flushes.setdefault((how, loaded), []).append(seconds)
    print(f"\n{args.files:,} files × 10 KiB; median of {args.repeat} interleaved rounds; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"load = dd writing {args.dd_mib} MiB files in a loop on the same filesystem; CLI wall time\n")
    labels = [*sides, "dvc add"]
    width = max(map(len, labels))
    print(f"{'tool':{width}}  {'idle':>8}  {'under load':>10}  {'dvc/tool idle':>13}  {'dvc/tool load':>13}")
    for label in labels:
        idle, load = results[(label, "idle")], results[(label, "under dd load")]
        di, dl = results[("dvc add", "idle")] / idle, results[("dvc add", "under dd load")] / load
        print(f"{label:{width}}  {idle:7.2f}s  {load:9.2f}s  {di:12.2f}×  {dl:12.2f}×")
    print(f"\nthe flush step alone ({args.files:,} fresh objects, in-process, median of {args.repeat}):")
    for how in ("syncfs", "fdatasync pool"):
        idle, load = statistics.median(flushes[(how, False)]), statistics.median(flushes[(how, True)])
        print(f"  {how:16}  idle {idle:6.2f}s  under dd load {load:6.2f}s")


if __name__ == "__main__":
    main()
