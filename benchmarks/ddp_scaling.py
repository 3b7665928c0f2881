"""Throughput of `mf` trained by one process vs two under torch.distributed (DDP, gloo on the CPU).

Runs `torchrun --standalone --nproc-per-node P -m movierec train --data FILE --model mf ...`
for P = 1 and 2 (and one process with as many threads as the two use together, the fair
single-process peer on the same cores), interleaved, `--repeats` times each, and prints the
median training ratings per second (all ranks together, from the fit's history), the median
fit seconds and the validation RMSE of the last run of each. The data is a synthetic set
written by `movierec data synth` (1M ratings, ML-1M's shape, by default).

    .venv/bin/python benchmarks/ddp_scaling.py [--ratings 1000000] [--epochs 3] [--batch-size 32768]

Time it on a quiet machine: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32768)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ddp_scaling.json")
    args = parser.parse_args(argv)

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = Path(tempfile.mkdtemp(prefix="ddp-scaling-"))
    data = work / "ratings.csv"
    subprocess.run([str(BIN / "movierec"), "data", "synth", "--users", str(args.users), "--items", str(args.items),
                    "--ratings", str(args.ratings), "--seed", "0", "--out", str(data)],
                   check=True, capture_output=True, env=env)
    common = ["-m", "movierec", "train", "--data", str(data), "--model", "mf", "--param", f"epochs={args.epochs}",
              "--param", f"batch_size={args.batch_size}", "--param", "refit=false", "--quiet", "--json", "--overwrite"]
    variants = {
        "1 process, 1 thread": [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "1", *common,
                                "--threads", "1"],
        "1 process, 2 threads": [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "1", *common,
                                 "--threads", "2"],
        "2 processes (DDP), 1 thread each": [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", *common,
                                             "--threads", "1"],
    }
    load_start = os.getloadavg()
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, cmd in variants.items():
            result = run([*cmd, "--out", str(work / f"mf-{r}")], env)
            runs[name].append(result["metrics"])
            print(f"  {name}: {result['metrics']['ratings_per_s']:,.0f} ratings/s", file=sys.stderr)
    load_end = os.getloadavg()

    base = statistics.median(m["ratings_per_s"] for m in runs["1 process, 1 thread"])
    rows = []
    print(f"mf, {args.ratings:,} synthetic ratings, {args.epochs} epochs, batch {args.batch_size}, "
          f"median of {args.repeats}; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"{'variant':36s} {'ratings/s':>12s} {'vs 1 process':>13s} {'fit s':>7s} {'val RMSE':>9s}")
    for name, metrics in runs.items():
        speed = statistics.median(m["ratings_per_s"] for m in metrics)
        fit = statistics.median(m["fit_seconds"] for m in metrics)
        rmse = metrics[-1]["best_validation"]
        rows.append({"variant": name, "ratings_per_s": speed, "ratio": speed / base, "fit_seconds": fit,
                     "validation_rmse": rmse})
        print(f"{name:36s} {speed:12,.0f} {speed / base:12.2f}x {fit:7.2f} {rmse:9.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "ddp_scaling", "command": "python benchmarks/ddp_scaling.py " + " ".join(argv or sys.argv[1:]),
        "ratings": args.ratings, "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
        "load_average": [load_start[0], load_end[0]], "cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
