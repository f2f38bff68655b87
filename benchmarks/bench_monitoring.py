"""Benchmark: conveyor's drift engine vs Evidently's DataDriftPreset, in one run.

    .venv/bin/python benchmarks/bench_monitoring.py            # everything (~5 min on 2 cores)
    .venv/bin/python benchmarks/bench_monitoring.py --skip-big # only the 200,000-row comparison

1. 200,000 rows × (20 numeric + 5 categorical), reference and current in memory as pandas
   DataFrames, default (auto) methods on both sides: wall time of each, the ratio, and
   peak RSS; conveyor is timed cold (summarise the reference + compare) and warm (compare
   the window against the stored reference summary, what a monitor does).
   Exact against exact: Evidently computes every statistic on the full data. conveyor is
   run twice: **exact** (``exact_limit`` ≥ the row count, so the summaries keep every
   sorted value and SciPy computes the statistics on the data, as Evidently does) and with
   its default **sketch** (columns over 5,000 values become 2,001 quantiles + counts: an
   approximation, error below one sketch step, 0.05 % of the CDF — conveyor is then the
   side that approximates). The speed-up quoted against Evidently is the exact one.
2. Agreement of per-column verdicts with Evidently when both use the same method and
   threshold (auto, ks/chisquare, psi, jensenshannon, wasserstein), conveyor exact.
   ``chisquare`` differs by definition: conveyor's is the two-sample test of homogeneity,
   Evidently's the goodness of fit to the reference shares (conveyor's ``chisquare_gof``).
3. 1,000,000 × 100 numeric columns read from Parquet, column chunk by column chunk:
   conveyor's time and peak RSS (Evidently is not run at that size: hours, per its issues).

Evidently runs in its own virtualenv (benchmarks/.venvs/evidently, ``pandas<3`` because
Evidently 0.7 fails to import with pandas 3), created by this script when missing. Each
measurement runs in a fresh process so peak RSS belongs to it alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "monitoring"
VENV = HERE / ".venvs" / "evidently"
SHIFTS = [0.0] * 12 + [0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.5, 1.0]
METHODS = {  # label → (conveyor per-kind methods, Evidently preset arguments)
    "auto": ({}, {}),
    "ks/chisquare": ({"numeric": "ks", "categorical": "chisquare"}, {"num_method": "ks", "cat_method": "chisquare"}),
    "psi": ({"numeric": "psi", "categorical": "psi"}, {"num_method": "psi", "cat_method": "psi"}),
    "jensenshannon": ({"numeric": "jensenshannon", "categorical": "jensenshannon"},
                      {"num_method": "jensenshannon", "cat_method": "jensenshannon"}),
    "wasserstein": ({"numeric": "wasserstein", "categorical": "jensenshannon"},
                    {"num_method": "wasserstein", "cat_method": "jensenshannon"}),
}


def ensure_evidently() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently, pyarrow, psutil"], capture_output=True)
    if probe.returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow", "psutil"],
                       check=True)
    return python


def make_data(rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    WORK.mkdir(parents=True, exist_ok=True)
    ref_path, cur_path = WORK / f"ref_{rows}.parquet", WORK / f"cur_{rows}.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    rng = np.random.default_rng(7)
    frames = []
    for side in (0, 1):
        data = {}
        for i, shift in enumerate(SHIFTS):
            scale = 1.0 + i % 3
            if i % 5 == 4:  # skewed
                data[f"num_{i}"] = rng.lognormal(shift * side, 0.5, rows)
            else:
                data[f"num_{i}"] = rng.normal(shift * side * scale, scale, rows)
        cats = [("cat_0", 3, 0.0), ("cat_1", 8, 0.0), ("cat_2", 30, 0.0), ("cat_3", 5, 0.03), ("cat_4", 12, 0.2)]
        for name, k, tilt in cats:
            p = np.ones(k) / k
            if side:
                p = p * (1 + tilt * np.linspace(-1, 1, k))
                p /= p.sum()
            data[name] = pd.Series(rng.choice([f"v{j}" for j in range(k)], rows, p=p)).astype(object)
        frames.append(pd.DataFrame(data))
    frames[0].to_parquet(ref_path)
    frames[1].to_parquet(cur_path)
    return ref_path, cur_path


def make_big(rows: int, cols: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    WORK.mkdir(parents=True, exist_ok=True)
    paths = (WORK / f"big_ref_{rows}x{cols}.parquet", WORK / f"big_cur_{rows}x{cols}.parquet")
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(11)
    batch = 100_000
    for side, path in enumerate(paths):
        schema = pa.schema([(f"f{j}", pa.float64()) for j in range(cols)])
        with pq.ParquetWriter(path, schema) as writer:
            for _ in range(rows // batch):
                shift = np.where(np.arange(cols) % 10 == 0, 0.3 * side, 0.0)
                block = rng.normal(shift, 1.0, (batch, cols))
                writer.write_table(pa.table({f"f{j}": block[:, j] for j in range(cols)}, schema=schema))
    return paths


# -- the measured processes ------------------------------------------------------------------------
def run_conveyor(ref_path: str, cur_path: str, in_memory: bool, exact: bool = False) -> dict:
    import resource

    import pandas as pd

    import scipy.stats  # noqa: F401  (imported before timing, as Evidently's imports are)

    from conveyor.monitoring import compare, summarize

    ref = pd.read_parquet(ref_path) if in_memory else ref_path
    cur = pd.read_parquet(cur_path) if in_memory else cur_path
    out: dict = {"verdicts": {}}
    import numpy as np

    tiny = pd.DataFrame({"x": np.arange(300.0), "c": ["a", "b", "c"] * 100})
    compare(summarize(tiny), tiny)  # warm imports, as Evidently's are imported before its timing
    limit = {"exact_limit": 10**9} if exact else {}  # exact: keep every value; default: sketch above 5,000
    t0 = time.perf_counter()
    summary = summarize(ref, **limit)
    t1 = time.perf_counter()
    report = compare(summary, summarize(cur, **limit) if exact else cur)
    t2 = time.perf_counter()
    out.update(summarize_s=t1 - t0, compare_s=t2 - t1, summary_bytes=len(summary.to_bytes()),
               drift_share=report.drift_share, exact_columns=sum(c.exact for c in report.columns),
               columns=len(report.columns))
    t3 = time.perf_counter()
    warm = compare(summary, report.current)  # the window's summary against the stored reference
    out["warm_compare_s"] = time.perf_counter() - t3
    assert warm.drift_share == report.drift_share
    cur_summary = report.current
    for label, (per_kind, _) in METHODS.items() if in_memory else []:
        methods = {c.column: per_kind[c.kind] for c in report.columns if c.kind in per_kind}
        if label == "ks/chisquare":  # Evidently's chisquare is the goodness of fit: compare like with like
            methods = {k: ("chisquare_gof" if v == "chisquare" else v) for k, v in methods.items()}
        again = compare(summary, cur_summary, methods=methods)
        out["verdicts"][label] = {c.column: [c.method, c.value, c.drifted, c.exact] for c in again.columns}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


EVIDENTLY = r"""
import json, resource, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
methods = json.loads(sys.argv[3])
num = [c for c in ref.columns if c.startswith("num")]
cat = [c for c in ref.columns if c.startswith("cat")]
out = {"verdicts": {}, "times": {}}
P_VALUES = {"ks", "chisquare", "z", "K-S p_value", "chi-square p_value", "Z-test p_value"}
for label, kwargs in methods.items():
    t0 = time.perf_counter()
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    snap = Report([DataDriftPreset(**kwargs)]).run(Dataset.from_pandas(cur, data_definition=dd),
                                                   Dataset.from_pandas(ref, data_definition=dd))
    out["times"][label] = time.perf_counter() - t0
    verdicts = {}
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            method, thr, value = cfg["method"], cfg["threshold"], m["value"]
            pvalue = "p_value" in method or method in P_VALUES
            drifted = (value <= thr if "K-S" in method or method == "ks" else value < thr) if pvalue else value >= thr
            verdicts[cfg["column"]] = [method, float(value), bool(drifted)]
    out["verdicts"][label] = verdicts
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def child(args: list[str]) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{args[:3]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--big-cols", type=int, default=100)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()

    ref, cur = make_data(args.rows)
    me = [sys.executable, __file__, "--child"]
    ours = child([*me, str(ref), str(cur), "memory", "exact"])
    sketch = child([*me, str(ref), str(cur), "memory", "sketch"])
    cold = ours["summarize_s"] + ours["compare_s"]
    print(f"== {args.rows:,} rows x (20 numeric + 5 categorical), default methods")
    for label, r in (("conveyor exact", ours), ("conveyor sketch (approximate)", sketch)):
        print(f"{label}: summarise reference {r['summarize_s']:.2f} s + compare {r['compare_s']:.2f} s "
              f"= {r['summarize_s'] + r['compare_s']:.2f} s; against the stored summary {r['warm_compare_s']:.3f} s; "
              f"peak RSS {r['peak_rss_mb']:.0f} MiB; reference summary {r['summary_bytes'] / 1024:.0f} KiB; "
              f"{r['exact_columns']}/{r['columns']} columns computed on the data; drift share {r['drift_share']:.2f}")
    if not args.skip_evidently:
        python = ensure_evidently()
        theirs = child([str(python), "-c", EVIDENTLY, str(ref), str(cur),
                        json.dumps({k: v[1] for k, v in METHODS.items()})])
        (WORK / "evidently_last.json").write_text(json.dumps(theirs))
        t_ev = theirs["times"]["auto"]
        print(f"Evidently DataDriftPreset (exact, on the data): {t_ev:.2f} s (this process's peak RSS over all "
              f"method runs {theirs['peak_rss_mb']:.0f} MiB)")
        print(f"speed-up, exact vs exact: {t_ev / cold:.1f}x cold (summaries built in the timed path), "
              f"{t_ev / ours['warm_compare_s']:.1f}x against a stored summary")
        sketch_cold = sketch["summarize_s"] + sketch["compare_s"]
        print(f"speed-up, conveyor's sketch (approximate) vs Evidently exact: {t_ev / sketch_cold:.1f}x cold")
        print("== agreement of per-column verdicts (same method and threshold on both sides; conveyor exact;")
        print("   ks/chisquare uses conveyor's chisquare_gof, Evidently's definition)")
        for label in METHODS:
            a, b = ours["verdicts"][label], theirs["verdicts"][label]
            same = [c for c in a if c in b and a[c][2] == b[c][2]]
            differ = [f"{c} ({a[c][0]}: ours {a[c][1]:.4g}, theirs {b[c][1]:.4g})" for c in a if c in b and c not in same]
            print(f"{label:>14}: {len(same)}/{len(a)} agree" + (f"; differ: {', '.join(differ)}" if differ else ""))
    if not args.skip_big:
        big_ref, big_cur = make_big(args.big_rows, args.big_cols)
        big = child([*me, str(big_ref), str(big_cur), "parquet"])
        total = big["summarize_s"] + big["compare_s"]
        print(f"== {args.big_rows:,} x {args.big_cols} from Parquet (streamed in column chunks)")
        print(f"conveyor: summarise reference {big['summarize_s']:.1f} s + summarise window and compare "
              f"{big['compare_s']:.1f} s = {total:.1f} s; peak RSS {big['peak_rss_mb']:.0f} MiB "
              f"(the data: {args.big_rows * args.big_cols * 8 / 2**20:.0f} MiB per side); "
              f"drift share {big['drift_share']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        exact = len(sys.argv) > 5 and sys.argv[5] == "exact"
        print(json.dumps(run_conveyor(sys.argv[2], sys.argv[3], sys.argv[4] == "memory", exact)))
    else:
        main()
