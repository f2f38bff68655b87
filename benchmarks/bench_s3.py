"""Benchmark: many small files to and from S3 — conveyor now, conveyor before, and DVC.

Not a test: prints a table with ratios. Everything talks to moto's S3 server on 127.0.0.1
(its own process) through a TCP proxy that delays every chunk by half the round-trip time
in each direction (default 20 ms round trip), to stand in for a real S3 region.

Cases (issue 12 targets in brackets):
  data add of N × 10 KiB files   this checkout vs the baseline commit   [≥ 10× faster]
  data get of the same version   this checkout vs the baseline commit   [≥ 10× faster]
  doctor --quick over ~2N loose objects + the packs (this checkout)    [< 5 s for 4,000]
  dvc push / dvc pull of the same folder to the same server, as a ratio

The baseline ("today's code") is extracted with ``git archive`` from a commit (default: the
merge base with ``main``) into a temp folder and run with the same interpreter and venv.
DVC runs from its own virtualenv (benchmarks/.venvs/dvc, ``pip install 'dvc[s3]'``).

``--doctor-only`` times only ``doctor --quick`` (the store is still filled the same way:
a data add of N files, 2N loose objects), ``--doctor-repeat K`` times it K times and reports
the median, and ``--doctor-against REV`` times REV's code on the same store too, the two
alternating (a same-minute before/after on a shared machine).

Run: ``.venv/bin/python benchmarks/bench_s3.py [--files 2000] [--rtt-ms 20] [--baseline REV] [--get-repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "bench_s3"
DVC_VENV = HERE / ".venvs" / "dvc"
# Empty AWS config files (not /dev/null: DVC's loader refuses a path that is not a file).
_EMPTY = WORK.parent / "empty-aws-config"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": str(_EMPTY), "AWS_SHARED_CREDENTIALS_FILE": str(_EMPTY), "AWS_EC2_METADATA_DISABLED": "true",
}


# -- the latency proxy (runs in its own process: ``bench_s3.py --proxy LISTEN TARGET RTT_MS``) ----

async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward chunks in order, each ``delay`` seconds after it arrived (a link's latency)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay, chunk))
            if not chunk:
                return

    task = asyncio.create_task(pump())
    try:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        task.cancel()
        writer.close()


def run_proxy(listen: int, target: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000.0

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- helpers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def dvc() -> Path:
    exe = DVC_VENV / "bin" / "dvc"
    if not exe.exists():
        print("installing DVC into", DVC_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "-q", "dvc[s3]"], check=True)
    return exe


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "AWS_"))} | CREDENTIALS | env
    full["DVC_NO_ANALYTICS"] = "1"
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def make_files(folder: Path, count: int, salt: str) -> None:
    for i in range(count):
        sub = folder / f"d{i % 20:02}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05}.bin").write_bytes(salt.encode() + os.urandom(10 * 1024 - len(salt)))


def baseline_tree(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` extracted into ``into`` (no checkout, no worktree left behind)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def create_bucket(endpoint: str) -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, **{  # type: ignore[arg-type]
        "aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1",
    }).create_bucket(Bucket=name)
    return name


def count_objects(endpoint: str, url: str) -> int:
    """How many keys the store at ``s3://bucket/prefix`` holds."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=endpoint, **{  # type: ignore[arg-type]
        "aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1",
    })
    return sum(page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--baseline", default=None, help="git revision of 'today's code' (default: merge base with main)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-dvc", action="store_true")
    parser.add_argument("--get-repeat", type=int, default=1,
                        help="time data get this many times for both sides, alternating; report medians")
    parser.add_argument("--doctor-only", action="store_true",
                        help="time only doctor --quick (no baseline add/get, no full doctor, no DVC)")
    parser.add_argument("--doctor-repeat", type=int, default=1, help="time doctor --quick this many times; median")
    parser.add_argument("--doctor-against", default=None,
                        help="git revision whose doctor --quick is timed on the same store, alternating")
    parser.add_argument("--proxy", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.doctor_only:
        args.no_baseline = args.no_dvc = True
    if args.proxy:
        run_proxy(int(args.proxy[0]), int(args.proxy[1]), float(args.proxy[2]))
        return

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    _EMPTY.write_text("", encoding="utf-8")
    moto_port, proxy_port = free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                         env=os.environ | CREDENTIALS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, __file__, "--proxy", str(proxy_port), str(moto_port), str(args.rtt_ms)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    rows: list[tuple[str, str, str, str]] = []
    try:
        wait_port(moto_port)
        wait_port(proxy_port)
        endpoint = f"http://127.0.0.1:{proxy_port}"
        direct = f"http://127.0.0.1:{moto_port}"
        source = WORK / "source"
        make_files(source / "many", args.files, "first")
        rev = args.baseline or subprocess.run(
            ["git", "-C", str(REPO), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
        ).stdout.strip()

        def conveyor_side(label: str, pythonpath: Path) -> tuple[dict[str, float], Path, dict[str, str]]:
            project = WORK / f"project-{label}"
            project.mkdir()
            (project / "conveyor.toml").write_text("", encoding="utf-8")
            shutil.copytree(source / "many", project / "many")
            env = {
                "PYTHONPATH": str(pythonpath),
                "CONVEYOR_STORE_ARTIFACTS_URL": f"s3://{create_bucket(direct)}/conveyor",
                "CONVEYOR_STORE_S3_ENDPOINT_URL": endpoint,
            }
            cli = [sys.executable, "-m", "conveyor"]
            out = {"add": timed([*cli, "data", "add", "many", "--name", "many"], project, env)}
            out["get"] = timed([*cli, "data", "get", "many@1", str(project / "checkout")], project, env)
            return out, project, env

        ours, ours_project, ours_env = conveyor_side("now", REPO / "src")
        # 2N more small files as loose objects (a run's artifacts are never packed), stored
        # through the direct endpoint to save time: doctor --quick then lists ~2N objects
        # that all have to be checked, besides the few packs of the data set.
        make_files(ours_project / "more", 2 * args.files, "second")
        seed = "import conveyor\nwith conveyor.start_run():\n    conveyor.log_artifacts('more')\n"
        timed([sys.executable, "-c", seed], ours_project, ours_env | {"CONVEYOR_STORE_S3_ENDPOINT_URL": direct})
        objects = count_objects(direct, ours_env["CONVEYOR_STORE_ARTIFACTS_URL"])
        cli = [sys.executable, "-m", "conveyor"]
        quicks: dict[str, list[float]] = {"now": [], "against": []}
        with tempfile.TemporaryDirectory(prefix="conveyor-doctor-") as tmp:
            against_src = baseline_tree(args.doctor_against, Path(tmp)) if args.doctor_against else None
            for _ in range(max(1, args.doctor_repeat)):
                quicks["now"].append(timed([*cli, "doctor", "--quick"], ours_project, ours_env))
                if against_src is not None:
                    quicks["against"].append(timed([*cli, "doctor", "--quick"], ours_project,
                                                   ours_env | {"PYTHONPATH": str(against_src)}))
        quick = statistics.median(quicks["now"])
        print(f"doctor --quick: now {[round(t, 2) for t in quicks['now']]}"
              + (f", {args.doctor_against} {[round(t, 2) for t in quicks['against']]}" if against_src else "")
              + f" (load average {os.getloadavg()[0]:.1f})", flush=True)
        full = float("nan") if args.doctor_only else timed([*cli, "doctor"], ours_project, ours_env)
        print(f"this checkout: add {ours['add']:.2f}s, get {ours['get']:.2f}s, doctor --quick {quick:.2f}s, "
              f"doctor {full:.2f}s ({objects} objects)", flush=True)
        rows.append((f"data add {args.files:,} × 10 KiB", f"{ours['add']:.2f}s", "", ""))
        rows.append((f"data get {args.files:,} × 10 KiB", f"{ours['get']:.2f}s", "", ""))
        median_of = f" (median of {len(quicks['now'])})" if len(quicks["now"]) > 1 else ""
        rows.append((f"doctor --quick, {objects:,} objects{median_of}", f"{quick:.2f}s",
                     f"{statistics.median(quicks['against']):.2f}s" if against_src else "",
                     f"{statistics.median(quicks['against']) / quick:.1f}× (vs {args.doctor_against})"
                     if against_src else ""))
        if not args.doctor_only:
            rows.append((f"doctor (full, verifies content), {objects:,} objects", f"{full:.2f}s", "", ""))

        if not args.no_baseline:
            with tempfile.TemporaryDirectory(prefix="conveyor-baseline-") as tmp:
                base_src = baseline_tree(rev, Path(tmp))
                base, base_project, base_env = conveyor_side("baseline", base_src)
                print(f"baseline {rev[:10]}: add {base['add']:.2f}s, get {base['get']:.2f}s", flush=True)
                if args.get_repeat > 1:
                    # On a shared machine the load moves within minutes: time the two gets
                    # back to back, alternating, and compare medians of the pairs.
                    gets: dict[str, list[float]] = {"now": [ours["get"]], "baseline": [base["get"]]}
                    for i in range(1, args.get_repeat):
                        for label, project, env in (("now", ours_project, ours_env),
                                                    ("baseline", base_project, base_env)):
                            gets[label].append(timed(
                                [*cli, "data", "get", "many@1", str(project / f"checkout{i}")], project, env))
                    print(f"data get, alternating: now {gets['now']}, baseline {gets['baseline']}", flush=True)
                    ours["get"] = statistics.median(gets["now"])
                    base["get"] = statistics.median(gets["baseline"])
                    rows[1] = (f"data get {args.files:,} × 10 KiB (median of {args.get_repeat})", f"{ours['get']:.2f}s",
                               "", "")
            rows[0] = (rows[0][0], rows[0][1], f"{base['add']:.2f}s", f"{base['add'] / ours['add']:.1f}×")
            rows[1] = (rows[1][0], rows[1][1], f"{base['get']:.2f}s", f"{base['get'] / ours['get']:.1f}×")

        if not args.no_dvc:
            exe = dvc()
            repo = WORK / "dvc-repo"
            repo.mkdir()
            shutil.copytree(source / "many", repo / "many")
            run = lambda *cmd: timed([str(exe), *cmd], repo, {})  # noqa: E731
            run("init", "--no-scm", "-q")
            run("remote", "add", "-d", "s3", f"s3://{create_bucket(direct)}/dvc")
            run("remote", "modify", "s3", "endpointurl", endpoint)
            run("add", "-q", "many")
            try:
                push = run("push", "-v")
                shutil.rmtree(repo / ".dvc" / "cache")
                shutil.rmtree(repo / "many")
                pull = run("pull", "-v")
            except SystemExit as failed:  # report what we have, and why DVC failed
                print(f"DVC failed: {failed}", flush=True)
                push = pull = float("nan")
            print(f"dvc: push {push:.2f}s, pull {pull:.2f}s", flush=True)
            rows.append((f"dvc push {args.files:,} × 10 KiB", f"{push:.2f}s", "", f"conveyor {push / ours['add']:.1f}× faster"))
            rows.append((f"dvc pull {args.files:,} × 10 KiB", f"{pull:.2f}s", "", f"conveyor {pull / ours['get']:.1f}× faster"))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)

    print(f"\nmoto S3 server on 127.0.0.1 behind a proxy adding {args.rtt_ms:.0f} ms round trip; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; CLI wall time incl. start-up; "
          f"baseline = {rev[:10]}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'case':{width}}  {'conveyor':>9}  {'baseline':>9}  ratio")
    for label, now, before, ratio in rows:
        print(f"{label:{width}}  {now:>9}  {before:>9}  {ratio}")


if __name__ == "__main__":
    main()
