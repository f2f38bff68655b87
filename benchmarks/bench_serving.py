"""Serving benchmark: conveyor vs `mlflow models serve`, same scikit-learn model, same load.

The model is the one of peers-measured.md: a logistic regression on scikit-learn's
breast-cancer set (30 float features), trained identically in both virtualenvs. Each server
runs alone on 127.0.0.1 and gets the same bounded load from a separate process: N
keep-alive connections sending single-row ``dataframe_split`` requests for S seconds
(after a warm-up), then stopping by themselves. Reported: throughput, p50/p99 latency,
non-200 answers, and ratios against MLflow measured in the same run.

Configurations: MLflow (its default single worker); conveyor with batching (the default)
and without, for the logistic regression and for a 100-tree random forest (where predict,
not HTTP, dominates); conveyor with 2 workers with and without its TCP_NODELAY fix (uvicorn with
several workers does not set it: each keep-alive answer then waits ~40 ms); and one client
in sequence, to derive the server's overhead over a bare in-process ``predict`` of one row.
conveyor runs as `conveyor serve` would: prediction log and access log on.

MLflow lives in benchmarks/.venvs/mlflow (created on first use, reused if another script
made it); ``--env-manager local`` needs that venv's bin on PATH.

Run: ``.venv/bin/python benchmarks/bench_serving.py [--seconds 20] [--clients 16] [--skip-mlflow]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, VENVS, WORK, peer_python, run_timed, table  # noqa: E402

OUT = WORK / "serving"

TRAIN = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=10000).fit(X, y)
"""

CONVEYOR_SAVE = TRAIN + """
import json, sys, time, conveyor.models
conveyor.models.save(model, sys.argv[1], input_example=X.iloc[:5], overwrite=True)
loaded = conveyor.models.load(sys.argv[1])
row = X.iloc[:1]
def best(f, n=2000):
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    times.sort(); return times[len(times) // 2]
matrix = row.to_numpy()
from sklearn.ensemble import RandomForestClassifier
forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X, y)
conveyor.models.save(forest, sys.argv[1] + "-forest", input_example=X.iloc[:5], overwrite=True)
forest_loaded = conveyor.models.load(sys.argv[1] + "-forest", trusted=["sklearn.tree._tree.Tree"])
print(json.dumps({"sklearn_predict": best(lambda: model.predict(row)),
                  "conveyor_predict_frame": best(lambda: loaded.predict(row)),
                  "conveyor_predict": best(lambda: loaded.predict(matrix)),
                  "forest_predict": best(lambda: forest_loaded.predict(matrix), 200),
                  "forest_predict_16": best(lambda: forest_loaded.predict(X.iloc[:16].to_numpy()), 200),
                  "row": [float(v) for v in row.iloc[0]], "columns": list(X.columns),
                  "y": int(model.predict(row)[0])}))
"""

MLFLOW_SAVE = TRAIN + """
import json, shutil, sys, time, mlflow.sklearn, mlflow.pyfunc
shutil.rmtree(sys.argv[1], ignore_errors=True)
mlflow.sklearn.save_model(model, sys.argv[1], input_example=X.iloc[:5])
loaded = mlflow.pyfunc.load_model(sys.argv[1])
row = X.iloc[:1]
times = []
for _ in range(2000):
    t = time.perf_counter(); loaded.predict(row); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"pyfunc_predict": times[len(times) // 2], "version": mlflow.__version__}))
"""

# The load generator: raw HTTP/1.1 over asyncio streams (cheap, so the server gets the CPU).
LOADGEN = """
import asyncio, collections, json, socket, sys, time
host, port, path, seconds, clients, warmup = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
body = sys.stdin.buffer.read()
request = (f"POST {path} HTTP/1.1\\r\\nHost: {host}\\r\\nContent-Type: application/json\\r\\n"
           f"Content-Length: {len(body)}\\r\\n\\r\\n").encode() + body
lat, codes, errors = [], collections.Counter(), []

async def client(start, stop):
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        t = time.perf_counter()
        if t >= stop:
            break
        writer.write(request)
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        low = head.lower()
        i = low.find(b"content-length:")
        if i < 0:
            errors.append(head[:200].decode()); break
        await reader.readexactly(int(low[i + 15:low.find(b"\\r\\n", i)]))
        if t >= start:
            lat.append(time.perf_counter() - t); codes[int(head[9:12])] += 1
    writer.close()

async def main():
    now = time.perf_counter()
    start, stop = now + warmup, now + warmup + seconds
    await asyncio.gather(*(client(start, stop) for _ in range(clients)))

try:
    import uvloop; uvloop.install()
except ImportError:
    pass
asyncio.run(main())
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(json.dumps({"requests": len(lat), "rps": len(lat) / seconds, "p50": q(0.5), "p99": q(0.99),
                  "codes": dict(codes), "errors": errors[:3]}))
"""

CONVEYOR_SERVER = """
import sys, json
from conveyor.models import load
from conveyor.serving import ServedModel, ServingConfig, create_app, run
from conveyor.settings import Settings
from conveyor.tracking import Tracker, set_tracker
pkg, port, batching, workers, nodelay, project = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]
loop = sys.argv[7] if len(sys.argv) > 7 else "auto"
config = ServingConfig(batching=batching)
if workers > 1:
    run(spec={"models": [], "folders": [{"path": pkg, "name": "bc", "version": "1"}], "config": config.model_dump(),
              "root": project, "log_level": "warning"}, port=port, workers=workers, nodelay=nodelay, log_level="warning", loop=loop)
else:
    tracker = Tracker.from_settings(Settings.load(project), create=True); set_tracker(tracker)
    # the forest's tree type is trusted explicitly: skops refuses it by default
    run(create_app([ServedModel("bc", load(pkg, trusted=["sklearn.tree._tree.Tree"]), "1")], config=config, tracker=tracker), port=port, nodelay=nodelay,
        log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], path: str, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {OUT}/*.log")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def load(port: int, body: bytes, seconds: float, clients: int, warmup: float = 2.0) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOADGEN), "127.0.0.1", str(port), "/invocations", str(seconds),
         str(clients), str(warmup)], input=body, capture_output=True, check=True)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def serve_and_load(name: str, cmd: list[str], env: dict[str, str], ready: str, body: bytes,
                   runs: list[tuple[int, float]]) -> list[dict[str, float]]:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    log = open(OUT / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, cwd=OUT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(port, proc, ready)
        results = []
        for clients, seconds in runs:
            r = load(port, body, seconds, clients)
            r.update(name=name, clients=clients)
            print(f"  {name:28s} {clients:2d} clients: {r['rps']:8.1f} req/s  p50 {r['p50'] * 1e3:7.2f} ms  "
                  f"p99 {r['p99'] * 1e3:7.2f} ms  codes {r['codes']} {r['errors'] or ''}", flush=True)
            results.append(r)
        return results
    finally:
        stop(proc)
        log.close()


def mlflow_python() -> Path:
    python = VENVS / "mlflow" / "bin" / "python"
    ok = python.exists() and subprocess.run([str(python), "-c", "import mlflow, sklearn, uvicorn"],
                                            capture_output=True).returncode == 0
    return python if ok else peer_python("mlflow", ["mlflow==3.*", "scikit-learn", "pandas"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    project = OUT / "project"
    project.mkdir()
    (project / "conveyor.toml").write_text("", "utf-8")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}

    facts = run_timed(sys.executable, CONVEYOR_SAVE.replace("sys.argv[1]", repr(str(OUT / "conveyor-pkg"))), OUT)
    body = json.dumps({"dataframe_split": {"columns": facts["columns"], "data": [facts["row"]]}}).encode()
    n, s = args.clients, args.seconds
    results: dict[str, list[dict[str, float]]] = {}
    conveyor_cmd = [sys.executable, "-c", textwrap.dedent(CONVEYOR_SERVER), str(OUT / "conveyor-pkg"), "{port}"]
    print(f"load: {n} keep-alive connections x {s:g} s of single-row dataframe_split requests (+2 s warm-up)")

    if not args.skip_mlflow:
        py = mlflow_python()
        peer = run_timed(py, MLFLOW_SAVE.replace("sys.argv[1]", repr(str(OUT / "mlflow-pkg"))), OUT)
        facts.update(mlflow_version=peer["version"], pyfunc_predict=peer["pyfunc_predict"])
        env = {**base_env, "PATH": f"{py.parent}:{base_env.get('PATH', '')}"}
        results["mlflow"] = serve_and_load(
            "mlflow", [str(py.parent / "mlflow"), "models", "serve", "-m", str(OUT / "mlflow-pkg"), "-h", "127.0.0.1",
                       "-p", "{port}", "--env-manager", "local"], env, "/ping", body, [(1, min(s, 5.0)), (n, s)])
    results["conveyor"] = serve_and_load(
        "conveyor (batching)", [*conveyor_cmd, "1", "1", "1", str(project)], base_env, "/v2/health/ready", body,
        [(1, min(s, 5.0)), (n, s)])
    results["nobatch"] = serve_and_load(
        "conveyor (no batching)", [*conveyor_cmd, "0", "1", "1", str(project)], base_env, "/v2/health/ready", body,
        [(n, s)])
    # Where batching pays: a model whose predict costs more than the HTTP around it.
    forest_cmd = [sys.executable, "-c", textwrap.dedent(CONVEYOR_SERVER), str(OUT / "conveyor-pkg-forest"), "{port}"]
    for label, flag in (("forest", "1"), ("forest-nobatch", "0")):
        results[label] = serve_and_load(
            f"conveyor {label}", [*forest_cmd, flag, "1", "1", str(project)], base_env, "/v2/health/ready", body,
            [(n, min(s, 10.0))])
    if not args.skip_workers:
        # asyncio's loop (uvicorn without uvloop, as in many images) is where the pitfall bites;
        # uvloop sets TCP_NODELAY itself.
        for label, nodelay in (("2 workers, asyncio, TCP_NODELAY", "1"), ("2 workers, asyncio, uvicorn as is", "0")):
            results[label] = serve_and_load(
                f"conveyor ({label})", [*conveyor_cmd, "1", "2", nodelay, str(project), "asyncio"], base_env,
                "/v2/health/ready", body, [(1, min(s, 5.0)), (n, min(s, 10.0))])
    (OUT / "results.json").write_text(json.dumps({"facts": facts, "results": results}, indent=2), "utf-8")
    report(facts, results, n)


def report(facts: dict[str, object], results: dict[str, list[dict[str, float]]], n: int) -> None:
    loaded = {k: v[-1] for k, v in results.items()}
    rows = [(k, f"{r['rps']:.0f}", f"{r['p50'] * 1e3:.1f}", f"{r['p99'] * 1e3:.1f}",
             str(sum(c for code, c in r["codes"].items() if str(code) != "200"))) for k, r in loaded.items()]
    print()
    print(table(rows, ("server", f"req/s ({n} clients)", "p50 ms", "p99 ms", "non-200")))
    c, nb = loaded["conveyor"], loaded["nobatch"]
    print()
    if "mlflow" in loaded:
        m = loaded["mlflow"]
        print(f"throughput conveyor / MLflow: {c['rps'] / m['rps']:.1f}x (target >= 5x)")
        print(f"p99 conveyor / MLflow:        {c['p99'] / m['p99']:.3f} (target <= 0.333)")
    print(f"batching on / off:            {c['rps'] / nb['rps']:.1f}x (target >= 2x)")
    if "forest" in loaded:
        print(f"batching on / off, forest:    {loaded['forest']['rps'] / loaded['forest-nobatch']['rps']:.1f}x "
              f"(100-tree random forest: predict {float(facts['forest_predict']) * 1e3:.1f} ms for 1 row, "  # type: ignore[arg-type]
              f"{float(facts['forest_predict_16']) * 1e3:.1f} ms for 16)")  # type: ignore[arg-type]
    for label in ("2 workers, asyncio, TCP_NODELAY", "2 workers, asyncio, uvicorn as is"):
        if label in results:
            print(f"{label + ', one client:':41s} p50 {results[label][0]['p50'] * 1e3:.2f} ms")
    one = results["conveyor"][0]
    bare = float(facts["conveyor_predict"])  # type: ignore[arg-type]
    print(f"one client in sequence:       p50 {one['p50'] * 1e3:.2f} ms per request")
    print(f"bare predict of one row:      sklearn (DataFrame) {float(facts['sklearn_predict']) * 1e3:.2f} ms, "  # type: ignore[arg-type]
          f"LoadedModel (DataFrame) {float(facts['conveyor_predict_frame']) * 1e3:.2f} ms, "  # type: ignore[arg-type]
          f"LoadedModel (1x30 matrix, what the server passes) {bare * 1e3:.2f} ms"
          + (f", MLflow pyfunc {float(facts['pyfunc_predict']) * 1e3:.2f} ms" if "pyfunc_predict" in facts else ""))
    print(f"server overhead per request:  {(one['p50'] - bare) * 1e3:.2f} ms (HTTP + JSON + checks + log, "
          "one client, p50 minus LoadedModel.predict of the same 1x30 matrix)")
    if "mlflow" in results:
        print(f"MLflow, one client:           p50 {results['mlflow'][0]['p50'] * 1e3:.2f} ms per request")


if __name__ == "__main__":
    main()
