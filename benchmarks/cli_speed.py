"""How fast the `movierec` command answers: wall time and peak memory per call.

Times, over `--runs` fresh processes each:

* `movierec --help`
* `movierec data describe ml-100k`
* `movierec recommend --model-dir DIR --user 42` for a saved model of each of `--models`
  (default mf, a torch model, and ease, a NumPy one), trained here first on ML-100K.

Every call is a new interpreter (`python -c "from movierec.cli import main; main()" ARGS`
with `PYTHONPATH` set to the source tree measured), as a person typing the command pays
it. Wall time is measured around the process, peak resident memory (max RSS) comes from
the kernel's accounting of that child (`os.wait4`). The load average is printed before and
after: on a busy machine the absolute numbers are higher, the before/after ratios hold
better.

With `--before-src PATH` (the `src/` of an older checkout, e.g. made with
`git worktree add /tmp/cli_before c4b984a`), the same commands run against that code
too, interleaved run by run, and a ratio column compares the two. Model folders are
trained by each tree's own `movierec train`, since folder formats differ.

    python benchmarks/cli_speed.py --runs 7
    python benchmarks/cli_speed.py --runs 7 --before-src /tmp/cli_before/src --json /tmp/cli_speed.json
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

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = "import sys; from movierec.cli import main; sys.argv[0] = 'movierec'; main()"
#: quick training settings: the recommend timing does not depend on how well the model fits
TRAIN_PARAMS = {"mf": ["--param", "epochs=5"]}


def run_once(src: Path, args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one `movierec ARGS` process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"movierec {' '.join(args)} (PYTHONPATH={src}) failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def train_folder(src: Path, model: str, out: Path) -> Path:
    """A model folder written by that tree's own `movierec train`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", LAUNCH, "train", "--dataset", "ml-100k", "--model", model, "--out", str(out),
           *TRAIN_PARAMS.get(model, [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"training {model} with {src} failed:\n{proc.stderr[-2000:]}")
    return out


def summarise(walls: list[float], rss: list[float]) -> dict:
    ordered = sorted(walls)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"runs": len(walls), "median_s": statistics.median(walls), "p90_s": p90, "max_s": max(walls),
            "min_s": min(walls), "peak_rss_mib": statistics.median(rss), "max_rss_mib": max(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command and tree")
    parser.add_argument("--models", default="mf,ease", help="comma-separated models to time `recommend` with")
    parser.add_argument("--before-src", type=Path, default=None, help="src/ of an older checkout to compare with")
    parser.add_argument("--work", type=Path, default=None, help="folder for the model folders (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    opts = parser.parse_args()
    if opts.runs < 1:
        parser.error("--runs must be at least 1")
    os.environ.setdefault("MOVIEREC_MIRROR", "/work/shared/datasets")

    trees = {"after": ROOT / "src"}
    if opts.before_src is not None:
        if not (opts.before_src / "movierec" / "cli").is_dir():
            parser.error(f"{opts.before_src} is not a movierec src/ folder")
        trees = {"before": opts.before_src.resolve(), **trees}
    models = [m.strip() for m in opts.models.split(",") if m.strip()]
    work = Path(opts.work or tempfile.mkdtemp(prefix="cli_speed_"))
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"({os.cpu_count()} CPUs)", flush=True)

    commands: dict[str, dict[str, list[str]]] = {tree: {} for tree in trees}
    for tree, src in trees.items():
        commands[tree]["--help"] = ["--help"]
        commands[tree]["data describe ml-100k"] = ["data", "describe", "ml-100k"]
        for model in models:
            folder = work / tree / model
            if not (folder / "manifest.json").is_file() and not any(folder.glob("*.json")):
                print(f"training {model} with the {tree} code ...", flush=True)
                train_folder(src, model, folder)
            commands[tree][f"recommend ({model} folder)"] = ["recommend", "--model-dir", str(folder), "--user", "42"]
    for tree, src in trees.items():  # warm the file cache and the dataset cache once
        for args in commands[tree].values():
            run_once(src, args)

    samples = {tree: {name: ([], []) for name in commands[tree]} for tree in trees}
    for _ in range(opts.runs):  # interleaved, so drifting load hits every tree alike
        for name in commands["after"]:
            for tree, src in trees.items():
                wall, rss, _ = run_once(src, commands[tree][name])
                samples[tree][name][0].append(wall)
                samples[tree][name][1].append(rss)
    results = {tree: {name: summarise(*samples[tree][name]) for name in samples[tree]} for tree in trees}
    load_end = os.getloadavg()

    head = f"{'command':<28}{'tree':<8}{'median s':>10}{'p90 s':>9}{'max s':>9}{'peak RSS MiB':>14}"
    if "before" in trees:
        head += f"{'x faster':>10}{'x less mem':>12}"
    print("\n" + head)
    print("-" * len(head))
    for name in commands["after"]:
        for tree in trees:
            r = results[tree][name]
            line = (f"{name:<28}{tree:<8}{r['median_s']:>10.3f}{r['p90_s']:>9.3f}{r['max_s']:>9.3f}"
                    f"{r['peak_rss_mib']:>14.0f}")
            if tree == "after" and "before" in trees:
                b = results["before"][name]
                line += f"{b['median_s'] / r['median_s']:>10.1f}{b['peak_rss_mib'] / r['peak_rss_mib']:>12.1f}"
            print(line)
    print(f"\nload average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
          f"{opts.runs} runs per command and tree; python {sys.version.split()[0]}")
    if opts.json is not None:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps({"runs": opts.runs, "load_start": load_start, "load_end": load_end,
                                         "cpus": os.cpu_count(), "trees": {t: str(s) for t, s in trees.items()},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
