"""Top-K benchmark for implicit-feedback models: movierec's own models beside implicit's ALS/BPR.

For each dataset x protocol, in one run (all of it through `movierec.experiments`):

1. Split per user in time (`leave-last`): protocol ``loo`` holds out each user's last
   interaction (test) and the one before (validation), every held-out item relevant;
   protocol ``last20`` holds out each user's last 20% (test) and the 20% before
   (validation), ratings >= 4 relevant. Validation/test users or items absent from
   train are dropped.
2. Tune every model that declares a search space with `experiments.tune` on
   ``split.train`` -> ``split.validation`` (seeded TPE, NDCG@10, the same number of
   trials for every model: ``--trials``, default 20), or reuse its tuned configuration
   ``configs/tuned/<dataset>/<protocol key>/<model>.json``.
3. `experiments.compare`: refit every model on train + validation, time the fit, rank
   the whole catalog for the test users (train + validation items excluded), bootstrap
   95% CIs.
4. Report NDCG/recall/HR at 10, 20 and 100 (HR@100: the retrieval-stage figure of
   issue 10), and paired tests (t-test and Wilcoxon, Holm-corrected) against implicit's
   ALS. For ``loo`` also ``hr@100_rated4``: HR@100 over the test users whose held-out
   movie is rated >= 4 (what ``compare --protocol leave-last --holdout 1 -k 100`` reports
   with its default threshold; each loo user has one test movie, so it is the mean of
   those users' hr@100).

Run:  .venv/bin/python benchmarks/topk.py            (tunes what is not cached)
      .venv/bin/python benchmarks/topk.py --retune   (tunes everything again)
      .venv/bin/python benchmarks/topk.py --datasets ml-100k --protocols loo --models pop,ease --trials 2
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
import pandas as pd  # noqa: E402

from movierec.data import load_movielens  # noqa: E402
from movierec.evaluation.protocols import build_split  # noqa: E402
from movierec.evaluation.stats import compare_to_reference  # noqa: E402
from movierec.experiments import CompareSpec, TunedConfig, compare, config_root, protocol_key, tune, tuned_path  # noqa: E402
from movierec.experiments.models import model_class  # noqa: E402

PROTOCOLS = {
    # name: (holdout, relevance threshold)
    "loo": (1, None),
    "last20": (0.2, 4.0),
}
DEFAULT_MODELS = "random,pop,als,bpr,ease,neumf,mf-rank,seq-ease,two-tower"
DEFAULT_TRIALS = 20
#: held fixed while tuning, per dataset (EASE's inverse is cubic in the number of movies;
#: movies with < 3 training interactions are left out of B on the 9.7k-movie catalog)
FIXED = {"ml-latest-small": {"ease": {"min_item_count": 3}, "seq-ease": {"min_item_count": 3}}}
KS = (10, 20, 100)
#: loo: HR@100 also over the users whose held-out movie is rated >= this
LIKED = 4.0
METRICS = ("ndcg", "recall", "hr")
REFERENCE = "als"


def ensure_tuned(dataset: str, protocol: str, models: list[str], trials: int, retune: bool, root: Path,
                 seed: int, log) -> dict[str, dict]:
    """Tune (or reuse) every tunable model: name -> {"config": TunedConfig or None, "tune_s"}."""
    holdout, threshold = PROTOCOLS[protocol]
    key = protocol_key("leave-last", holdout)
    split = None
    out = {}
    for name in models:
        path = tuned_path(name, dataset, key, root)
        cfg = TunedConfig.load(path) if path.is_file() and not retune else None
        tune_s = 0.0
        if cfg is None and model_class(name).search_space and trials > 0:
            if split is None:
                split = build_split(load_movielens(dataset), "leave-last", holdout=holdout, seed=seed)
            t0 = time.perf_counter()
            cfg = tune(name, split, metric="ndcg@10", trials=trials, seed=seed, fixed=FIXED.get(dataset, {}).get(name),
                       relevance_threshold=threshold, dataset=dataset, protocol=key)
            tune_s = time.perf_counter() - t0
            cfg.save(path)
            log(f"  tuned {name} on {dataset}/{protocol} in {tune_s:.0f}s: {cfg.params}")
        out[name] = {"config": cfg, "tune_s": tune_s}
    return out


def run_one(dataset: str, protocol: str, models: list[str], trials: int, retune: bool, root: Path, seed: int,
            log) -> dict:
    holdout, threshold = PROTOCOLS[protocol]
    tuned = ensure_tuned(dataset, protocol, models, trials, retune, root, seed, log)
    untuned = {n: FIXED.get(dataset, {}).get(n, {}) for n in models if tuned[n]["config"] is None}
    comp = compare(CompareSpec(dataset=dataset, protocol="leave-last", holdout=holdout, models=models, ks=KS,
                               metrics=METRICS, relevance_threshold=threshold, seed=seed, config_root=root,
                               params={n: p for n, p in untuned.items() if p}))
    per_user = {n: r.per_user for n, r in comp.results.items()}
    liked = liked_users(dataset, holdout, seed) if threshold is None else None
    rows = []
    for name, res in comp.results.items():
        cfg, timing = tuned[name]["config"], comp.info["timing"][name]
        extra = {}
        if liked is not None:
            extra["hr@100_rated4"] = float(res.per_user.loc[res.per_user.index.isin(liked), "hr@100"].mean())
        rows.append({"model": name, **{m: res.summary[m] for m in sorted(res.summary)}, **extra,
                     "fit_s": timing["fit_s"],
                     "fit_cpu_s": timing["fit_cpu_s"], "tune_s": tuned[name]["tune_s"],
                     "val_ndcg@10": cfg.validation.get("ndcg@10") if cfg else None})
        log(f"  {dataset}/{protocol} {name:9s} ndcg@10={res.summary['ndcg@10']:.4f} fit {timing['fit_s']:.1f}s "
            f"(CPU {timing['fit_cpu_s']:.1f}s) tune {tuned[name]['tune_s']:.0f}s")
    cols = [f"{m}@{k}" for k in KS for m in METRICS] + (["hr@100_rated4"] if liked is not None else [])
    tests = compare_to_reference(per_user, REFERENCE, ["ndcg@10", "ndcg@20"]) if REFERENCE in per_user else None
    split = comp.info["split"]
    frame = pd.DataFrame(rows).set_index("model")
    return {
        "dataset": dataset, "protocol": protocol, "holdout": holdout, "relevance_threshold": threshold,
        "split": {"train": split["n_train"], "validation": split.get("n_validation", 0), "test": split["n_test"],
                  "test_users": int(per_user[models[0]].shape[0])},
        "table": frame[cols + ["fit_s", "fit_cpu_s", "tune_s", "val_ndcg@10"]].reset_index().to_dict(orient="records"),
        "ci": {n: {m: v for m, v in c.items() if m in ("ndcg@10", "ndcg@20")} for n, c in comp.ci.items()},
        "vs_als": tests.to_dict(orient="records") if tests is not None else [],
        "params": {n: u["params"] for n, u in comp.info["models_config"].items()},
        "configs": {n: u["config"] for n, u in comp.info["models_config"].items()},
    }


def liked_users(dataset: str, holdout, seed: int) -> np.ndarray:
    """Raw IDs of the test users whose held-out movies are all rated >= LIKED (the split
    `compare` makes; the loo protocol holds out one movie per user)."""
    split = build_split(load_movielens(dataset), "leave-last", holdout=holdout, seed=seed)
    frame = split.test.to_frame()
    low = frame.groupby("user")["rating"].min()
    return low.index[low >= LIKED].to_numpy()


def markdown(result: dict) -> str:
    t = pd.DataFrame(result["table"]).set_index("model")
    ease = t.loc["ease", "ndcg@10"] if "ease" in t.index else np.nan
    als = t.loc["als", "ndcg@10"] if "als" in t.index else np.nan
    tests = {(r["model"], r["metric"]): r for r in result["vs_als"]}
    lines = [
        f"**{result['dataset']}, {result['protocol']}** (test users {result['split']['test_users']}, "
        f"relevant: {'rating >= 4' if result['relevance_threshold'] else 'every held-out item'})",
        "",
        "| model | NDCG@10 [95% CI] | NDCG@20 | Recall@10 | Recall@20 | HR@10 | HR@100 | HR@100 (rated >= 4) | vs EASE | vs ALS | p (Holm, t / Wilcoxon) vs ALS | fit s (wall / CPU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, r in t.iterrows():
        lo, hi = result["ci"][name]["ndcg@10"]
        test = tests.get((name, "ndcg@10"))
        ptxt = "—" if test is None else f"{test['p_t_holm']:.1e} / {test['p_w_holm']:.1e}{' *' if test['significant'] else ''}"
        # last20 counts ratings >= 4 only, so its HR@100 already is the "rated >= 4" figure
        liked = r["hr@100_rated4"] if "hr@100_rated4" in r else (r["hr@100"] if result["relevance_threshold"] else np.nan)
        lines.append(
            f"| {name} | {r['ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}] | {r['ndcg@20']:.4f} | {r['recall@10']:.4f} | "
            f"{r['recall@20']:.4f} | {r['hr@10']:.4f} | {r['hr@100']:.4f} | {liked:.4f} | "
            f"{100 * (r['ndcg@10'] / ease - 1):+.1f}% | "
            f"{100 * (r['ndcg@10'] / als - 1):+.1f}% | {ptxt} | {r['fit_s']:.2f} / {r.get('fit_cpu_s', float('nan')):.2f} |"
        )
    return "\n".join(lines) + "\n"


def available_models(names: str) -> list[str]:
    """The registered models of a comma-separated list; the others are skipped with a note."""
    models = []
    for m in (m.strip() for m in names.split(",") if m.strip()):
        try:
            model_class(m)
            models.append(m)
        except Exception as exc:  # a model whose dependency is missing here, or not yet registered
            print(f"skipping {m}: {exc}", file=sys.stderr)
    return models


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--protocols", default="loo,last20")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    ap.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                    help="Optuna trials for every model with a search space (same budget for all)")
    ap.add_argument("--retune", action="store_true", help="ignore cached tuned configs")
    ap.add_argument("--config-root", default=str(config_root()))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "topk.json"))
    args = ap.parse_args(argv)
    models = available_models(args.models)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results, t0 = [], time.perf_counter()
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            results.append(run_one(dataset, protocol, models, args.trials, args.retune, Path(args.config_root),
                                   args.seed, log))
            print(markdown(results[-1]), flush=True)
    total = time.perf_counter() - t0
    print(f"total {total:.0f}s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "total_seconds": total, "argv": sys.argv[1:]}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
