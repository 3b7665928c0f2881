"""Benchmark: parsing an ml-25m-sized ratings.csv with movierec's reader vs bare pandas.

Generates (or reuses from a cache folder) a synthetic MovieLens-format ratings.csv with
movierec's planted-taste generator (ml-25m's shape: 162,541 users, 59,047 movies, 25M ratings),
then, each in a fresh subprocess so that peak memory is measured separately:

- movierec: `read_ratings(get_spec("ml-25m"), path)` + `build_dataset` (exactly the ml-25m code
  path: header check, typed parse, range check, IdMaps, Dataset);
- pandas: a bare `pandas.read_csv(path)` (C engine, default dtypes) of the same file.

Seconds are wall-clock for the parse alone (imports excluded), CPU seconds include every
thread; peak RSS is the child process's ru_maxrss (imports included). Medians of --repeats.

    .venv/bin/python benchmarks/data_load.py              # 25M rows
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


def _shape(rows: int) -> dict:
    """ml-25m's users/movies scaled to `rows` ratings (users linearly, movies by sqrt)."""
    f = rows / ML25M["n_ratings"]
    users = max(10, round(ML25M["n_users"] * f))
    items = max(10, round(ML25M["n_items"] * min(1.0, f) ** 0.5))
    return dict(n_users=min(users, rows), n_items=items, n_ratings=rows)


def _rss_gb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    return kb / 1024**2


def child(mode: str, path: str) -> None:
    """Run one measurement in this (fresh) process and print one JSON line."""
    if mode == "pandas":
        import pandas as pd

        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), time.process_time()
        frame = pd.read_csv(path)
        n = len(frame)
    elif mode == "movierec":
        from movierec.data.movielens import build_dataset, get_spec, read_ratings

        spec = get_spec("ml-25m")
        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), time.process_time()
        ds = build_dataset("synthetic", read_ratings(spec, Path(path)), rating_scale=spec.rating_scale)
        n = ds.n_ratings
    elif mode.startswith("generate:"):
        from movierec.data.synthetic import write_synthetic

        params = json.loads(mode.split(":", 1)[1])
        rss0 = _rss_gb()
        t0, c0 = time.perf_counter(), time.process_time()
        n = write_synthetic(path, **params)["n_ratings"]
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"mode": mode.split(":")[0], "rows": n, "seconds": seconds, "cpu": cpu,
                      "peak_rss_gb": _rss_gb(), "rss_after_imports_gb": rss0}))


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
    path, gen = _cached_file(args.rows, cache, args.seed, args.regenerate)
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({size_mb:,.0f} MB, {args.rows:,} rows)")
    if gen:
        print(f"generated with movierec.data.synthetic in {gen['seconds']:.1f} s wall, {gen['cpu']:.1f} s CPU, "
              f"peak RSS {gen['peak_rss_gb']:.2f} GB")
    else:
        print("reused the cached file (pass --regenerate to time the generator)")

    results: dict[str, list[dict]] = {"pandas": [], "movierec": []}
    for _ in range(args.repeats):  # interleaved, so that drifting machine load hits both alike
        for mode in results:
            results[mode].append(_run_child(mode, path))
    med = {m: {k: statistics.median(r[k] for r in runs) for k in ("seconds", "cpu", "peak_rss_gb")}
           for m, runs in results.items()}
    for m, runs in results.items():
        assert all(r["rows"] == args.rows for r in runs), f"{m} read a different number of rows"

    base = med["pandas"]
    print(f"\nmedian of {args.repeats} fresh-process runs, {os.cpu_count()} CPUs")
    print(f"{'reader':<44}{'seconds':>9}{'CPU s':>8}{'peak RSS GB':>13}{'time ratio':>12}")
    labels = {"pandas": "pandas.read_csv(path)  (bare, C engine)",
              "movierec": "movierec read_ratings(ml-25m) + build_dataset"}
    for m in ("pandas", "movierec"):
        ratio = med[m]["seconds"] / base["seconds"]
        print(f"{labels[m]:<44}{med[m]['seconds']:>9.2f}{med[m]['cpu']:>8.2f}{med[m]['peak_rss_gb']:>13.2f}{ratio:>11.2f}x")
    ok_time = med["movierec"]["seconds"] <= 1.5 * base["seconds"]
    ok_mem = med["movierec"]["peak_rss_gb"] < 3.0
    print(f"\ntarget: within 1.5x of pandas time ({'met' if ok_time else 'MISSED'}), "
          f"under 3 GB peak ({'met' if ok_mem else 'MISSED'})")
    figures = {"rows": args.rows, "repeats": args.repeats, "file": str(path), "generate": gen,
               "runs": results, "median": med}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import write_results

    print(f"results: {write_results('data_load', figures, args.out)}")


if __name__ == "__main__":
    main()
