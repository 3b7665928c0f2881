"""Training throughput of `mf` next to implicit's ALS on one ratings file: ratings per second per epoch.

    .venv/bin/python benchmarks/mf_throughput.py        # the 25M synthetic file, 2 epochs / 2 sweeps
    .venv/bin/python benchmarks/mf_throughput.py --file ratings.csv --epochs 3 --als-iterations 3 --out /tmp/t.json

The file (default `/work/scale-data/synth-25m/ratings.csv`, written by `movierec data synth`
with ML-25M's counts) is loaded once (`movierec.data.load_ratings`); then, on all of its
ratings, one after the other:

* `mf` with its default hyperparameters but `epochs` N (`--epochs`, 2) and `patience` 0,
  so it trains N epochs on every rating (no hold-out, no refit). Each epoch's ratings per
  second is the fit's own figure (`history_[...]["ratings_per_s"]`: the epoch's ratings
  over the seconds of its optimiser steps; the per-epoch training RMSE is not in them);
* `als` (implicit's ALS through movierec) with its default hyperparameters but
  `iterations` N (`--als-iterations`, 2). A sweep solves every user, then every movie,
  so it reads each rating twice; its ratings per second is the file's ratings over the
  sweep's seconds, timed between the fit's progress events (implicit calls back after
  each sweep). The first sweep's seconds also hold implicit's set-up inside `fit`
  (transposing the matrix, initialising the factors).

Both train on the same number of threads (`--threads`, default every core: torch's for
mf, implicit's for ALS). On a busy machine torch's threads wait on one another (1M
synthetic ratings at load average 5 on 2 cores: mf 115k ratings/s on 2 threads, 840k on 1):
time it on a quiet machine, or pass `--threads 1` and say so. The headline figure of each (`ratings_per_s`) is the median over
its epochs (sweeps) after the first, or the first alone when there is one; every epoch
and sweep is listed too. The load average is printed and recorded at the start and the
end: time it on a quiet machine. Results go to benchmarks/results/mf_throughput.json
(`--out` elsewhere), with the command that made them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import write_results  # noqa: E402

DEFAULT_FILE = Path("/work/scale-data/synth-25m/ratings.csv")


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def headline(rates: list[float]) -> float:
    """The median of the rates after the first (which carries one-off set-up), or the first."""
    return float(statistics.median(rates[1:] if len(rates) > 1 else rates))


class SweepClock:
    """A `movierec.training.progress` reporter that notes when each step of the task named
    `label` ends: `stamps[0]` is the task's start, `stamps[k]` the end of step k."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.stamps: list[float] = []
        self._done = 0.0

    def task_started(self, task) -> None:
        if task.label == self.label:
            self.stamps = [time.perf_counter()]
            self._done = task.done

    def task_updated(self, task) -> None:
        if task.label == self.label and task.done > self._done:
            self.stamps.append(time.perf_counter())
            self._done = task.done

    def task_finished(self, task) -> None:
        pass

    def seconds(self) -> list[float]:
        """Each step's seconds."""
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def fit_mf(ds, epochs: int, threads: int) -> dict:
    """`mf` (defaults, `epochs` epochs on every rating) and each epoch's ratings per second."""
    from movierec.experiments import build_model
    from movierec.training.options import RuntimeOptions

    model = build_model("mf", {"epochs": epochs, "patience": 0})
    start = time.perf_counter()
    model.fit(ds, runtime=RuntimeOptions(num_threads=threads))
    fit_s = time.perf_counter() - start
    records = model.history_.records
    per_epoch = [{"epoch": int(r["epoch"]), "ratings_per_s": float(r["ratings_per_s"]),
                  "seconds": float(r["seconds"])} for r in records]
    return {"params": model.get_params(), "threads": model.runtime_.num_threads, "fit_s": fit_s,
            "epochs": per_epoch, "ratings_per_s": headline([e["ratings_per_s"] for e in per_epoch])}


def fit_als(ds, iterations: int, threads: int) -> dict:
    """`als` (defaults, `iterations` sweeps) and each sweep's ratings per second."""
    from movierec.experiments import build_model
    from movierec.training.progress import reporting

    model = build_model("als", {"iterations": iterations, "num_threads": threads})
    clock = SweepClock("training als")
    start = time.perf_counter()
    with reporting(clock):
        model.fit(ds)
    fit_s = time.perf_counter() - start
    seconds = clock.seconds()
    if len(seconds) != iterations:
        raise SystemExit(f"als reported {len(seconds)} sweeps for {iterations} iterations; "
                         "its progress events no longer mark the sweeps.")
    sweeps = [{"iteration": k + 1, "seconds": s, "ratings_per_s": ds.n_ratings / max(s, 1e-9)}
              for k, s in enumerate(seconds)]
    return {"params": model.get_params(), "threads": model.get_params()["num_threads"], "fit_s": fit_s,
            "iterations": sweeps,
            "ratings_per_s": headline([s["ratings_per_s"] for s in sweeps])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help=f"ratings file (default {DEFAULT_FILE})")
    parser.add_argument("--epochs", type=int, default=2, help="mf epochs (default 2)")
    parser.add_argument("--als-iterations", type=int, default=2, help="ALS sweeps (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of both trainers (default: every core)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/results/mf_throughput.json)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.als_iterations < 1 or args.threads < 1:
        parser.error("--epochs, --als-iterations and --threads must be at least 1")
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file; write ML-25M's shape with `movierec data synth --users 162541 "
                     f"--items 59047 --ratings 25000095 --out {args.file}` or pass --file")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from movierec.data import load_ratings

    loads = {"start": load_average()}
    log(f"load average at start: {loads['start']}")
    start = time.perf_counter()
    ds = load_ratings(args.file)
    load_s = time.perf_counter() - start
    log(f"loaded {ds.n_ratings:,} ratings of {ds.n_users:,} users and {ds.n_items:,} movies in {load_s:.1f}s")

    mf = fit_mf(ds, args.epochs, args.threads)
    for e in mf["epochs"]:
        log(f"  mf epoch {e['epoch']}: {e['ratings_per_s']:,.0f} ratings/s")
    als = fit_als(ds, args.als_iterations, args.threads)
    for s in als["iterations"]:
        log(f"  als sweep {s['iteration']}: {s['seconds']:.2f}s, {s['ratings_per_s']:,.0f} ratings/s")
    loads["end"] = load_average()
    log(f"load average at end: {loads['end']}")

    figures = {"file": str(args.file), "n_ratings": int(ds.n_ratings), "n_users": int(ds.n_users),
               "n_items": int(ds.n_items), "load_s": load_s, "threads": args.threads, "load_average": loads,
               "mf": mf, "als": als, "als_over_mf": als["ratings_per_s"] / max(mf["ratings_per_s"], 1e-9)}
    print("| model | threads | ratings/s per epoch (sweep) | each |")
    print("|---|---|---|---|")
    print(f"| mf ({args.epochs} epochs) | {args.threads} | {mf['ratings_per_s']:,.0f} | "
          + ", ".join(f"{e['ratings_per_s']:,.0f}" for e in mf["epochs"]) + " |")
    print(f"| als ({args.als_iterations} sweeps) | {args.threads} | {als['ratings_per_s']:,.0f} | "
          + ", ".join(f"{s['ratings_per_s']:,.0f}" for s in als["iterations"]) + " |")
    log(f"results: {write_results('mf_throughput', figures, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
