"""Benchmark: parsing an ml-25m-sized ratings.csv with movierec's readers vs bare pandas.

Generates (or reuses from a cache folder, or takes `--file`) a synthetic MovieLens-format
ratings.csv with movierec's planted-taste generator (ml-25m's shape: 162,541 users, 59,047
movies, 25M ratings), then, each in a fresh subprocess so that peak memory is measured
separately, interleaved run by run so that drifting machine load hits all alike:

- pandas: a bare `pandas.read_csv(path)` (C engine, default dtypes) of the same file;
- movierec: `read_ratings(get_spec("ml-25m"), path)` + `build_dataset` (exactly the ml-25m code
  path: header check, typed parse, range check, IdMaps, Dataset);
- load_ratings: `movierec.data.load_ratings(path)`, the path of a user's own file (`--data`):
  column detection, checks and the Dataset.

Seconds are wall-clock for the parse alone (imports excluded); CPU seconds (getrusage, every
thread; user + system, both printed) are the steadier figure on a shared machine; peak RSS is
the child process's ru_maxrss (imports included). Both sides use every CPU: pyarrow's parser
runs in threads, and so does pandas' C engine on a large local file (pandas >= 3.1,
`mode.max_threads`). System time is mostly the kernel zeroing fresh pages, which is dear on
the virtual benchmark machine: it varies from run to run more than user time does. Each run prints the 1-minute load average it met: time
ratios are meaningful on a quiet machine only (load well under the CPU count). Medians of
--repeats. Targets: at most 1.0x pandas' time, under 2 GB peak.

    .venv/bin/python benchmarks/data_load.py              # 25M rows
    .venv/bin/python benchmarks/data_load.py --file /work/scale-data/synth-25m/ratings.csv
    .venv/bin/python benchmarks/data_load.py --rows 1000000 --repeats 3 --out /tmp/data_load.json

Writes its figures to benchmarks/results/data_load.json (`--out` elsewhere), which
`benchmarks/render.py` turns into BENCHMARKS.md's "Data loading" table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ML25M = dict(n_users=162_541, n_items=59_047, n_ratings=25_000_095)
#: the readers compared, in run order; the first is the baseline
MODES = ("pandas", "movierec", "load_ratings")
LABELS = {"pandas": "pandas.read_csv(path)  (bare, C engine)",
          "movierec": "movierec read_ratings(ml-25m) + build_dataset",
          "load_ratings": "movierec load_ratings(path)  (--data)"}
TARGET_RATIO, TARGET_GB = 1.0, 2.0


def _shape(rows: int) -> dict:
    """ml-25m's users/movies scaled to `rows` ratings (users linearly, movies by sqrt)."""
    f = rows / ML25M["n_ratings"]
    users = max(10, round(ML25M["n_users"] * f))
    items = max(10, round(ML25M["n_items"] * min(1.0, f) ** 0.5))
    return dict(n_users=min(users, rows), n_items=items, n_ratings=rows)


def _cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of every thread of this process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _rss_gb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    return kb / 1024**2


def child(mode: str, path: str) -> None:
    """Run one measurement in this (fresh) process and print one JSON line."""
    if mode == "pandas":
        import pandas as pd

        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        frame = pd.read_csv(path)
        n = len(frame)
    elif mode == "movierec":
        from movierec.data.movielens import build_dataset, get_spec, read_ratings

        spec = get_spec("ml-25m")
        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        ds = build_dataset("synthetic", read_ratings(spec, Path(path)), rating_scale=spec.rating_scale)
        n = ds.n_ratings
    elif mode == "load_ratings":
        from movierec.data import load_ratings

        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        n = load_ratings(path).n_ratings
    elif mode.startswith("generate:"):
        from movierec.data.synthetic import write_synthetic

        params = json.loads(mode.split(":", 1)[1])
        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        n = write_synthetic(path, **params)["n_ratings"]
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds, c1 = time.perf_counter() - t0, _cpu_seconds()
    user, system = c1[0] - c0[0], c1[1] - c0[1]
    print(json.dumps({"mode": mode.split(":")[0], "rows": n, "seconds": seconds, "cpu": user + system,
                      "user": user, "sys": system, "peak_rss_gb": _rss_gb(), "rss_after_imports_gb": rss0,
                      "load_avg": os.getloadavg()[0]}))


def _run_child(mode: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cached_file(rows: int, cache: Path, seed: int, regenerate: bool) -> tuple[Path, dict | None]:
    params = dict(**_shape(rows), seed=seed)
    path = cache / f"synth-{params['n_users']}u-{params['n_items']}i-{rows}r-s{seed}.csv"
    meta_path = Path(f"{path}.meta.json")
    if path.exists() and meta_path.exists() and not regenerate:
        meta = json.loads(meta_path.read_text())
        if all(meta["params"].get(k) == v for k, v in params.items()):
            return path, None
    cache.mkdir(parents=True, exist_ok=True)
    gen = _run_child("generate:" + json.dumps(params), path)
    return path, gen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ML25M["n_ratings"], help="ratings in the file (default: ml-25m's)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process runs per reader (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the generated file (default: $MOVIEREC_CACHE/bench or the temp folder)")
    parser.add_argument("--regenerate", action="store_true", help="generate the file again even if cached")
    parser.add_argument("--file", type=Path, default=None,
                        help="read this ml-25m-format ratings.csv instead of generating one (--rows is its row count)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures to this JSON file")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/data_load.json)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    default_cache = Path(os.environ.get("MOVIEREC_CACHE", tempfile.gettempdir())) / "bench"
    cache = args.cache or default_cache
    path, gen = (args.file, None) if args.file else _cached_file(args.rows, cache, args.seed, args.regenerate)
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({size_mb:,.0f} MB, {args.rows:,} rows)")
    if args.file:
        print("given with --file")
    elif gen:
        print(f"generated with movierec.data.synthetic in {gen['seconds']:.1f} s wall, {gen['cpu']:.1f} s CPU, "
              f"peak RSS {gen['peak_rss_gb']:.2f} GB")
    else:
        print("reused the cached file (pass --regenerate to time the generator)")

    results: dict[str, list[dict]] = {m: [] for m in MODES}
    for rep in range(args.repeats):  # interleaved, so that drifting machine load hits every reader alike
        for mode in results:
            run = _run_child(mode, path)
            results[mode].append(run)
            print(f"  run {rep + 1} {mode:<13}{run['seconds']:>7.2f} s{run['cpu']:>7.2f} CPU s "
                  f"(user {run['user']:.2f} + sys {run['sys']:.2f}){run['peak_rss_gb']:>7.2f} GB   "
                  f"load average {run['load_avg']:.2f}", flush=True)
    med = {m: {k: statistics.median(r[k] for r in runs)
               for k in ("seconds", "cpu", "user", "sys", "peak_rss_gb", "load_avg")}
           for m, runs in results.items()}
    for m, runs in results.items():
        assert all(r["rows"] == args.rows for r in runs), f"{m} read a different number of rows"

    base = med["pandas"]
    loads = [r["load_avg"] for runs in results.values() for r in runs]
    print(f"\nmedian of {args.repeats} fresh-process runs, {os.cpu_count()} CPUs, "
          f"load average {min(loads):.2f}..{max(loads):.2f} during the runs")
    print(f"{'reader':<48}{'seconds':>9}{'CPU s':>8}{'user':>7}{'sys':>7}{'peak RSS GB':>13}{'time ratio':>12}"
          f"{'CPU ratio':>11}")
    for m in MODES:
        ratio, cpu_ratio = med[m]["seconds"] / base["seconds"], med[m]["cpu"] / base["cpu"]
        print(f"{LABELS[m]:<48}{med[m]['seconds']:>9.2f}{med[m]['cpu']:>8.2f}{med[m]['user']:>7.2f}"
              f"{med[m]['sys']:>7.2f}{med[m]['peak_rss_gb']:>13.2f}{ratio:>11.2f}x{cpu_ratio:>10.2f}x")
    for m in MODES[1:]:
        ok_time = med[m]["seconds"] <= TARGET_RATIO * base["seconds"]
        ok_mem = med[m]["peak_rss_gb"] < TARGET_GB
        print(f"target for {m}: at most {TARGET_RATIO:.1f}x pandas time ({'met' if ok_time else 'MISSED'}), "
              f"under {TARGET_GB:.0f} GB peak ({'met' if ok_mem else 'MISSED'})")
    if max(loads) > (os.cpu_count() or 1) * 0.5:
        print(f"note: the load average reached {max(loads):.2f} on {os.cpu_count()} CPUs: the machine was busy, "
              f"so compare CPU seconds, and time again on a quiet machine for the record")
    figures = {"rows": args.rows, "repeats": args.repeats, "file": str(path), "generate": gen,
               "runs": results, "median": med, "cpus": os.cpu_count(), "load_avg": [min(loads), max(loads)]}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import write_results

    print(f"results: {write_results('data_load', figures, args.out)}")


if __name__ == "__main__":
    main()
