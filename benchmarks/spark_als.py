"""als-spark against als (issue 19, item 6): does Spark MLlib's ALS rank as well as implicit's? Quality only.

On ML-100K and ml-latest-small, leave-last (each user's last rating is test, the one before
validation; every held-out movie relevant; the whole catalog ranked with the user's train +
validation movies excluded), the protocol of `benchmarks/rerank.py`:

1. `als` with its tuned leave-last config (`configs/tuned/<dataset>/loo/als.json`), fitted on
   train + validation, NDCG@10 on test.
2. `als-spark` with the same factors, alpha, iterations, values and seed. Its
   regularization cannot be copied: Spark scales `regParam` by each user's (movie's)
   number of ratings (ALS-WR), implicit does not. So, as `als`'s was tuned on validation,
   Spark's is chosen on validation too, among `REG_SHARES` times implicit's value divided
   by the mean number of ratings per user and per movie (the value that regularises an
   average user as implicit does): fitted on train, NDCG@10 on validation; the best is
   refitted on train + validation and measured on test. With one candidate (`--reg-shares 1`,
   a quicker run) the mapped value is used as it is.
3. The ratio als-spark / als of test NDCG@10 and the paired per-user difference with a
   bootstrap 95% CI. Goal (issue 19): the ratio is at least 0.90 on both datasets.

Every Spark fit shares one `local[2]` session (`movierec.models.als_spark.spark_session`).

Run:  .venv/bin/python benchmarks/spark_als.py
      .venv/bin/python benchmarks/spark_als.py --datasets ml-100k --out /tmp/spark_als.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from movierec.models.als_spark import spark_session  # noqa: E402

DATASETS = ("ml-100k", "ml-latest-small")
PROTOCOL = "leave-last"
HOLDOUT = 1
K = 10
#: Spark's regParam candidates, as multiples of implicit's regularization / mean ratings per user and movie
REG_SHARES = (0.25, 1.0, 4.0)
#: the parameters copied from als to als-spark
SHARED = ("factors", "alpha", "iterations", "values", "seed")
GOAL_RATIO = 0.90
N_BOOT = 2000


def ndcg(model, train, test) -> np.ndarray:
    """Per-user NDCG@10 of a fitted model (users in `test`, train movies excluded)."""
    return evaluate_ranking(model, train, test, ks=(K,), metrics=["ndcg"]).per_user[f"ndcg@{K}"].to_numpy()


def paired(base: np.ndarray, new: np.ndarray, seed: int) -> dict:
    """Mean per-user difference new - base with a bootstrap 95% CI."""
    diff = new - base
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(N_BOOT, len(diff)))].mean(axis=1)
    return {"diff": float(diff.mean()), "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}


def run_dataset(name: str, seed: int, root: Path, reg_shares: list[float], log) -> dict:
    ds = load_movielens(name)
    split = build_split(ds, PROTOCOL, holdout=HOLDOUT, seed=seed)
    full = split.train_full()
    als_params = model_settings(["als"], name, protocol_key(PROTOCOL, HOLDOUT), seed, root)["als"]["params"]
    log(f"{name}: als {als_params}")
    als = build_model("als", als_params).fit(full)
    als_ndcg = ndcg(als, full, split.test)

    per_user = split.train.n_ratings / max(int((split.train.user_counts() > 0).sum()), 1)
    per_movie = split.train.n_ratings / max(int((split.train.item_counts() > 0).sum()), 1)
    base_reg = float(als_params.get("regularization", 0.05)) / ((per_user + per_movie) / 2)
    shared = {k: als_params[k] for k in SHARED if k in als_params}
    grid = []
    for share in (reg_shares if len(reg_shares) > 1 else ()):  # one candidate: nothing to choose
        params = {**shared, "regularization": base_reg * share}
        started = time.perf_counter()
        model = build_model("als-spark", params).fit(split.train)
        score = float(np.mean(ndcg(model, split.train, split.validation)))
        grid.append({"regularization": params["regularization"], "share": share, "validation_ndcg@10": score})
        log(f"{name}: als-spark regularization {params['regularization']:.4g} (x{share}): validation NDCG@10 "
            f"{score:.4f} ({time.perf_counter() - started:.0f}s, under load)")
    best = max(grid, key=lambda row: row["validation_ndcg@10"]) if grid else {"regularization": base_reg * reg_shares[0]}
    spark_params = {**shared, "regularization": best["regularization"]}
    spark = build_model("als-spark", spark_params).fit(full)
    spark_ndcg = ndcg(spark, full, split.test)
    ratio = float(spark_ndcg.mean() / als_ndcg.mean())
    log(f"{name}: test NDCG@10 als {als_ndcg.mean():.4f}, als-spark {spark_ndcg.mean():.4f} (ratio {ratio:.3f})")
    return {
        "dataset": name,
        "split": {k: v for k, v in split_summary(split).items() if k.startswith("n_")},
        "als": {"params": als_params, f"ndcg@{K}": float(als_ndcg.mean())},
        "als_spark": {"params": spark_params, f"ndcg@{K}": float(spark_ndcg.mean()), "regularization_grid": grid},
        "ratio": ratio,
        "spark_minus_als": paired(als_ndcg, spark_ndcg, seed),
        "goal": f"ratio >= {GOAL_RATIO}",
        "meets_goal": ratio >= GOAL_RATIO,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--master", default="local[2]", help="Spark master of the shared session.")
    ap.add_argument("--reg-shares", default=",".join(str(v) for v in REG_SHARES),
                    help="Spark regularization candidates, as multiples of the mapped value; one value: no "
                         "choice on validation (each candidate costs a Spark fit).")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "spark_als.json"))
    args = ap.parse_args()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    shares = [float(v) for v in args.reg_shares.split(",")]
    results = []
    with spark_session(args.master, driver_memory="1g"):
        for name in args.datasets.split(","):
            results.append(run_dataset(name.strip(), args.seed, config_root(), shares, log))
    doc = {
        "benchmark": "als-spark vs als (implicit), NDCG@10, leave-last",
        "protocol": {"name": PROTOCOL, "holdout": HOLDOUT, "k": K, "seed": args.seed,
                     "exclude": "train + validation movies", "candidates": "every movie"},
        "spark": {"master": args.master, "reg_shares": shares},
        "results": results,
        "argv": sys.argv[1:],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    for row in results:
        print(f"{row['dataset']:16s} als {row['als'][f'ndcg@{K}']:.4f}  als-spark {row['als_spark'][f'ndcg@{K}']:.4f}"
              f"  ratio {row['ratio']:.3f}  {'meets' if row['meets_goal'] else 'MISSES'} the {GOAL_RATIO:.0%} goal")


if __name__ == "__main__":
    main()
