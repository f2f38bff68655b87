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


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["DVC_NO_ANALYTICS"] = "1"
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
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
    shutil.rmtree(WORK, ignore_errors=True)
    repo = WORK / "dvc-repo"  # DVC wants the data inside its repo; conveyor reads it from there too
    project = WORK / "conveyor-project"
    repo.mkdir(parents=True)
    project.mkdir()
    (project / "conveyor.toml").write_text("", encoding="utf-8")
    with open(repo / "big.bin", "wb") as f:
        chunk = os.urandom(8 << 20)
        for i in range(big_mib // 8):
            f.write(chunk[: len(chunk) - 1] + bytes([i % 256]))
    many = repo / "many"
    for i in range(nfiles):
        folder = many / f"d{i % 100:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05}.bin").write_bytes(os.urandom(10 * 1024))
    return repo, project


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
    rows: list[tuple[str, float, float, str]] = []

    warm(repo / "big.bin")
    c, _ = timed([*conveyor, str(repo / "big.bin"), "--name", "big"], project)
    warm(repo / "big.bin")
    d, _ = timed([str(dvc_exe), "add", "-q", "big.bin"], repo)
    rows.append((f"add one {args.big_mib} MiB file", c, d, "dvc add"))

    warm(repo / "many")
    c, _ = timed([*conveyor, str(repo / "many"), "--name", "many"], project)
    warm(repo / "many")
    d, _ = timed([str(dvc_exe), "add", "-q", "many"], repo)
    rows.append((f"add {args.files:,} files of 10 KiB", c, d, "dvc add"))

    c, out = timed([*conveyor, str(repo / "many"), "--name", "many"], project)
    assert "unchanged" in out, out
    d, _ = timed([str(dvc_exe), "status", "-q"], repo)
    rows.append(("nothing changed (re-add / status)", c, d, "dvc status"))

    target = repo / "many" / "d07" / "f00007.bin"
    target.chmod(0o644)  # DVC may have made it read-only or a link into its cache
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data[::-1])
    c, out = timed([*conveyor, str(repo / "many"), "--name", "many"], project)
    d, _ = timed([str(dvc_exe), "add", "-q", "many"], repo)
    rows.append(("one file changed, re-add", c, d, "dvc add"))

    print(f"\nconveyor (this checkout) vs {version or 'dvc'}; {os.cpu_count()} cores; hot page cache\n")
    print(f"{'case':38} {'conveyor':>10} {'dvc':>10} {'ratio':>8}  dvc command")
    for case, c, d, cmd in rows:
        print(f"{case:38} {c:9.2f}s {d:9.2f}s {d / c:7.1f}×  {cmd}")


if __name__ == "__main__":
    main()
