"""Benchmark: ``conveyor data add`` against ``dvc add`` / ``dvc status`` on the same work.

Not a test: prints a table with ratios. Both tools run as command-line processes (start-up
included, as a user sees it) on the same files with a hot page cache. DVC is installed
into its own virtualenv under benchmarks/.venvs/dvc on first use (`pip install dvc`).

Cases (issue 3 targets in brackets):
  1 GiB file      conveyor data add   vs dvc add          [≥ 3× faster]
  10,000 × 10 KiB conveyor data add   vs dvc add          [≥ 3× faster]
  nothing changed conveyor data add   vs dvc status       [≥ 10× faster, < 1 s]
  one file changed conveyor data add  vs dvc add          (no target: shows the stat cache)

Run: ``.venv/bin/python benchmarks/bench_data.py [--big-mib 1024] [--files 10000]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "bench_data"
DVC_VENV = HERE / ".venvs" / "dvc"
CONVEYOR = Path(sys.executable).with_name("conveyor")


def dvc() -> Path:
    exe = DVC_VENV / "bin" / "dvc"
    if not exe.exists():
        print("installing DVC into", DVC_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "-q", "dvc"], check=True)
    return exe


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds (user + sys) of the last timed command: steadier than wall time on a busy machine.
LAST_CPU = [0.0]


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["DVC_NO_ANALYTICS"] = "1"
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    LAST_CPU[0] = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, (done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip() else ""


def warm(path: Path) -> None:
    """Read everything once so both tools start from a hot page cache."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with open(f, "rb") as stream:
            while stream.read(8 << 20):
                pass


def setup(big_mib: int, nfiles: int) -> tuple[Path, Path]:
    """The same files twice: DVC relinks/rewrites the files it adds (new inodes), which
    would look like changes to conveyor's stat cache, so each tool gets its own copy."""
    shutil.rmtree(WORK, ignore_errors=True)
    repo = WORK / "dvc-repo"
    project = WORK / "conveyor-project"
    source = WORK / "source"
    (source / "many").mkdir(parents=True)
    project.mkdir()
    (project / "conveyor.toml").write_text("", encoding="utf-8")
    with open(source / "big.bin", "wb") as f:
        chunk = os.urandom(8 << 20)
        for i in range(big_mib // 8):
            f.write(chunk[: len(chunk) - 1] + bytes([i % 256]))
    for i in range(nfiles):
        folder = source / "many" / f"d{i % 100:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05}.bin").write_bytes(os.urandom(10 * 1024))
    shutil.copytree(source, repo)
    shutil.copytree(source, project / "data")
    shutil.rmtree(source)
    subprocess.run(["sync"], check=True)  # start both from a quiet disk
    return repo, project


def in_process(project: Path, folder: Path) -> float:
    """``conveyor.data.add`` of an unchanged folder, timed without interpreter start-up."""
    import conveyor.data as cd

    here = Path.cwd()
    os.chdir(project)
    try:
        cd.get_version("many")  # opens the stores once, as a long-lived process would have
        start = time.perf_counter()
        version = cd.add(folder, name="many")
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(here)
    assert not version.created
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    dvc_exe = dvc()
    version = subprocess.run([str(dvc_exe), "--version"], capture_output=True, text=True).stdout.strip()
    repo, project = setup(args.big_mib, args.files)
    subprocess.run([str(dvc_exe), "init", "--no-scm", "-q"], cwd=repo, check=True)
    conveyor = [str(CONVEYOR), "data", "add"]
    data = project / "data"
    rows: list[tuple[str, float, float, float, float, str]] = []

    def case(label: str, ours: list[str], theirs: list[str], dvc_cmd: str, expect: str | None = None) -> None:
        c, out = timed(ours, project)
        c_cpu = LAST_CPU[0]
        if expect is not None:
            assert expect in out, out
        d, _ = timed(theirs, repo)
        rows.append((label, c, d, c_cpu, LAST_CPU[0], dvc_cmd))

    warm(data / "big.bin")
    warm(repo / "big.bin")
    case(f"add one {args.big_mib} MiB file", [*conveyor, "data/big.bin", "--name", "big"],
         [str(dvc_exe), "add", "-q", "big.bin"], "dvc add", "added")
    # conveyor fsyncs every object before naming it; DVC leaves its copy in the page cache.
    flush, _ = timed(["sync"], repo)
    warm(data / "many")
    warm(repo / "many")
    case(f"add {args.files:,} files of 10 KiB", [*conveyor, "data/many", "--name", "many"],
         [str(dvc_exe), "add", "-q", "many"], "dvc add", "added")
    case("nothing changed (re-add / status)", [*conveyor, "data/many", "--name", "many"],
         [str(dvc_exe), "status", "-q"], "dvc status", "unchanged")
    _, _, d, _, d_cpu, _ = rows[-1]
    rows.append(("  same, conveyor Python API in-process", in_process(project, data / "many"), d, float("nan"), d_cpu,
                 "dvc status"))
    for root in (data, repo):
        target = root / "many" / "d07" / "f00007.bin"
        content = target.read_bytes()
        target.unlink()  # DVC may have left a read-only file or a link into its cache
        target.write_bytes(content[::-1])
    case("one file changed, re-add", [*conveyor, "data/many", "--name", "many"],
         [str(dvc_exe), "add", "-q", "many"], "dvc add", "added")

    load = os.getloadavg()[0]
    print(f"\nconveyor (this checkout) vs DVC {version}; {os.cpu_count()} cores, load average {load:.1f}; "
          "hot page cache; CLI wall time incl. start-up\n")
    print(f"{'case':40} {'conveyor':>9} {'dvc':>9} {'ratio':>7} {'cpu conv':>9} {'cpu dvc':>8} {'cpu ratio':>9}  dvc command")
    for label, c, d, c_cpu, d_cpu, cmd in rows:
        cpu = f"{c_cpu:8.2f}s {d_cpu:7.2f}s {d_cpu / c_cpu:8.1f}×" if c_cpu == c_cpu else f"{'':9} {d_cpu:7.2f}s {'':9}"
        print(f"{label:40} {c:8.2f}s {d:8.2f}s {d / c:6.1f}×  {cpu}  {cmd}")
    print(f"\n`sync` right after `dvc add` of the big file took {flush:.2f}s more: conveyor's time already "
          "includes making its copy durable (fsync), DVC's does not.")


if __name__ == "__main__":
    main()
