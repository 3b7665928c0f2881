"""Scalable EASE: the quality cost of `max_items` against dense EASE (issue 19, item 3).

Dense EASE on ml-25m's 59,047 movies needs a 13 GiB item matrix and a cubic inverse;
`max_items` keeps the item-item model to the most rated movies (the rest ranked by
popularity below them). At the default of 20,000 that is 34% of ml-25m's movies. This
benchmark measures what such a cap costs where the dense model still fits:

On ml-latest-small, leave-last (each user's last rating is test, the one before
validation; models refitted on train + validation with their tuned `loo` configs, every
held-out movie relevant, the whole catalog ranked with the user's train + validation movies
excluded), `ease` and `seq-ease` are fitted dense (`max_items=None`) and with caps at 50%,
34% (= 20,000 / 59,047), 20% and 10% of the training catalog. For each: NDCG@10 and HR@10,
the change against dense with a paired bootstrap 95% CI, fit seconds, the peak resident
memory the fit added, and the load average while it ran (timings are only comparable on a
quiet machine; the quality figures do not depend on load).

Goal (issue 19): at 34% of the movies, NDCG@10 within 2% of the dense model.

Run:  .venv/bin/python benchmarks/ease_scale.py
      .venv/bin/python benchmarks/ease_scale.py --models ease --shares 0.34 --out /tmp/ease_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

import numpy as np  # noqa: E402

from movierec.data import load_movielens  # noqa: E402
from movierec.evaluation.protocols import build_split, split_summary  # noqa: E402
from movierec.evaluation.runner import evaluate_ranking  # noqa: E402
from movierec.experiments import config_root, protocol_key  # noqa: E402
from movierec.experiments.compare import model_settings  # noqa: E402
from movierec.experiments.models import build_model  # noqa: E402

DATASET = "ml-latest-small"
PROTOCOL = "leave-last"
HOLDOUT = 1
K = 10
DEFAULT_MODELS = "ease,seq-ease"
#: the default cap's share of ml-25m's movies
ML25M_SHARE = 20_000 / 59_047
SHARES = (0.5, ML25M_SHARE, 0.2, 0.1)
MAX_COST = 0.02
N_BOOT = 2000
OUT = Path(__file__).resolve().parent / "results" / "ease_scale.json"


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measured_fit(model, train) -> tuple[float, int, list[float]]:
    """Fit `model`; (seconds, peak RSS the fit added in bytes, load averages before and after)."""
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    load = [os.getloadavg()[0]]
    thread.start()
    start = time.perf_counter()
    try:
        model.fit(train)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        thread.join()
    load.append(os.getloadavg()[0])
    return seconds, max(peak[0], rss_bytes()) - before, load


def paired(base: np.ndarray, new: np.ndarray, seed: int) -> dict:
    """Mean per-user difference new - base with a bootstrap 95% CI."""
    diff = new - base
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(N_BOOT, len(diff)))].mean(axis=1)
    return {"diff": float(diff.mean()), "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}


def run(models: list[str], shares: list[float], seed: int, root: Path, log) -> dict:
    ds = load_movielens(DATASET)
    split = build_split(ds, PROTOCOL, holdout=HOLDOUT, seed=seed)
    settings = model_settings(models, DATASET, protocol_key(PROTOCOL, HOLDOUT), seed, root)
    n_rated = int(np.count_nonzero(split.train_full().item_counts()))
    rows = []
    for name in models:
        base_ndcg = None
        dense = None
        for share in [None, *shares]:
            cap = None if share is None else max(1, int(round(share * n_rated)))
            params = {**settings[name]["params"], "max_items": cap}
            train = split.train_full()  # a fresh Dataset: no weights kept from an earlier fit
            model = build_model(name, params, seed)
            seconds, rss, load = measured_fit(model, train)
            res = evaluate_ranking(model, train, split.test, ks=(K,), metrics=("ndcg", "hr"),
                                   relevance_threshold=None)
            s = res.summary
            ndcg_users = res.per_user[f"ndcg@{K}"].to_numpy()
            row = {"model": name, "max_items": cap, "share": None if share is None else round(share, 4),
                   "modelled": int(len(model.model_items_)), f"ndcg@{K}": float(s[f"ndcg@{K}"]),
                   f"hr@{K}": float(s[f"hr@{K}"]), "fit_seconds": round(seconds, 2),
                   "peak_rss_added_mib": round(rss / 2**20, 1), "load_average": [round(x, 2) for x in load]}
            if dense is None:
                dense, base_ndcg = row, ndcg_users
            else:
                row["ndcg_change"] = row[f"ndcg@{K}"] / dense[f"ndcg@{K}"] - 1
                row["hr_change"] = row[f"hr@{K}"] / dense[f"hr@{K}"] - 1
                row["ndcg_vs_dense"] = paired(base_ndcg, ndcg_users, seed)
            rows.append(row)
            log(f"{name} max_items={cap} ({row['modelled']} modelled): ndcg@{K} {row[f'ndcg@{K}']:.4f} "
                f"hr@{K} {row[f'hr@{K}']:.4f}" + (f" ({row['ndcg_change']:+.2%} ndcg vs dense)" if "ndcg_change" in row
                                                  else " (dense)")
                + f"; fit {seconds:.1f} s, +{rss / 2**20:.0f} MiB RSS, load {load[0]:.1f}->{load[1]:.1f}")
    at_default = [r for r in rows if r["share"] is not None and abs(r["share"] - ML25M_SHARE) < 1e-3]
    verdict = {r["model"]: {"ndcg_change": r["ndcg_change"], "within_goal": r["ndcg_change"] >= -MAX_COST}
               for r in at_default}
    return {"dataset": DATASET, "protocol": PROTOCOL, "holdout": HOLDOUT, "k": K, "relevance_threshold": None,
            "seed": seed, "split": {k: v for k, v in split_summary(split).items() if k.startswith("n_")},
            "rated_movies": n_rated, "ml25m_share": ML25M_SHARE, "goal": {"max_ndcg_cost": MAX_COST},
            "configs": {n: settings[n]["config"] for n in models},
            "params": {n: settings[n]["params"] for n in models},
            "test_users": int(res.info["n_evaluated_users"]), "rows": rows, "verdict": verdict,
            "cpus": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--shares", default=",".join(f"{s:.4f}" for s in SHARES),
                    help="caps as shares of the training set's rated movies")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    result = run([m.strip() for m in args.models.split(",") if m.strip()],
                 [float(s) for s in args.shares.split(",") if s.strip()], args.seed, config_root(),
                 lambda line: print(line, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
