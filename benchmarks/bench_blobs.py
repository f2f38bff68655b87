"""Benchmark: hash + store a 1 GiB local file with conveyor.blobs.

Not a test: prints a table. Each run uses a fresh store; the page cache is not dropped
(the source is usually hot, as right after a training job wrote it). Baselines measured
in the same run: BLAKE3 hashing alone, and a plain copy + fsync (the floor for any
store that must persist the bytes).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_blobs.py [size_mib]``
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from conveyor.blobs import BlobStore
from conveyor.blobs._digest import hash_stream

WORK = Path(__file__).resolve().parent / ".work" / "bench_blobs"
RUNS = 3


class PeakRss:
    """Samples this process's RSS every 5 ms; psutil has no portable peak counter."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_source(size: int) -> Path:
    src = WORK / f"random-{size}.bin"
    if not src.exists() or src.stat().st_size != size:
        block = 16 * 1024 * 1024
        with src.open("wb") as f:
            for offset in range(0, size, block):
                f.write(os.urandom(min(block, size - offset)))
    return src


def copy_fsync(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with dst.open("rb+") as f:
        os.fsync(f.fileno())


def measure(name: str, size: int, action: Callable[[int], None]) -> None:
    rates, peaks = [], []
    for run in range(RUNS):
        with PeakRss() as rss:
            start = time.perf_counter()
            action(run)
            elapsed = time.perf_counter() - start
        rates.append(size / elapsed / 1e6)
        peaks.append(rss.peak / 2**20)
    runs = " ".join(f"{r:7.0f}" for r in rates)
    print(f"{name:<28} {runs}   {sorted(rates)[1]:7.0f}   {max(peaks):7.0f}")


def main() -> None:
    size = int(sys.argv[1]) * 2**20 if len(sys.argv) > 1 else 2**30
    WORK.mkdir(parents=True, exist_ok=True)
    src = make_source(size)
    baseline_rss = psutil.Process().memory_info().rss / 2**20
    print(f"source: {size / 2**30:.2f} GiB of random bytes; {psutil.cpu_count()} CPUs; "
          f"RSS before: {baseline_rss:.0f} MiB")
    print(f"{'operation':<28} {'MB/s per run':>23}   {'median':>7}   {'peakRSS MiB':>7}")

    def fresh(run: int) -> BlobStore:
        root = WORK / f"store-{run}"
        shutil.rmtree(root, ignore_errors=True)
        store = BlobStore.open(root)
        store.init()
        return store

    stores = [fresh(run) for run in range(RUNS)]
    measure("blake3 hash only", size, lambda run: _hash(src))
    measure("copyfile + fsync (floor)", size, lambda run: copy_fsync(src, WORK / f"copy-{run}"))
    measure("BlobStore.put_file (new)", size, lambda run: stores[run].put_file(src) and None)
    measure("BlobStore.put_file (dedup)", size, lambda run: stores[run].put_file(src) and None)
    for run in range(RUNS):
        shutil.rmtree(WORK / f"store-{run}", ignore_errors=True)
        (WORK / f"copy-{run}").unlink(missing_ok=True)


def _hash(src: Path) -> None:
    with src.open("rb", buffering=0) as f:
        hash_stream(f)


if __name__ == "__main__":
    main()
