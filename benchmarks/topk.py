"""Top-K benchmark for implicit-feedback models: movierec's own models beside implicit's ALS/BPR.

For each dataset x protocol, in one run:

1. Split per user in time (`leave-last`): protocol ``loo`` holds out each user's last
   interaction (test) and the one before (validation), every held-out item relevant;
   protocol ``last20`` holds out each user's last 20% (test) and the 20% before
   (validation), ratings >= 4 relevant. Validation/test users or items absent from
   train are dropped (`build_split`).
2. Tune every model with a search space on ``split.train`` -> ``split.validation``
   (seeded TPE, NDCG@10), or reuse the cached configuration in
   ``configs/tuned/<dataset>/<protocol>/<model>.json``.
3. Refit the tuned model on train + validation (``split.train_full()``), time the fit,
   and rank the whole catalog for the test users (train + validation items excluded).
4. Report NDCG/recall/HR at 10 and 20 with bootstrap 95% CIs, and paired tests
   (t-test and Wilcoxon, Holm-corrected) against implicit's ALS.

Data: each rating is one interaction (all ratings train; the threshold applies only to
what counts as relevant in the test part).

Run:  .venv/bin/python benchmarks/topk.py            (tunes what is not cached)
      .venv/bin/python benchmarks/topk.py --retune   (tunes everything again)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import movierec.models.ease as ease_module  # noqa: E402
from movierec.data import load_movielens  # noqa: E402
from movierec.evaluation.protocols import build_split  # noqa: E402
from movierec.evaluation.runner import evaluate_ranking  # noqa: E402
from movierec.evaluation.stats import compare_to_reference, confidence_intervals  # noqa: E402
from movierec.models.registry import create, get_class  # noqa: E402
from movierec.models.tune_ranking import load_tuned, save_tuned, tune_ranking, tuned_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = {
    # name: (holdout, relevance threshold)
    "loo": (1, None),
    "last20": (0.2, 4.0),
}
DEFAULT_MODELS = "random,pop,als,bpr,ease,neumf,mf-rank,seq-ease"
DEFAULT_TRIALS = {"als": 15, "bpr": 8, "ease": 10, "seq-ease": 20, "neumf": 7, "mf-rank": 6}
#: held fixed while tuning, per dataset (EASE's inverse is cubic in the number of movies;
#: movies with < 3 training interactions are left out of B on the 9.7k-movie catalog)
FIXED = {"ml-latest-small": {"ease": {"min_item_count": 3}, "seq-ease": {"min_item_count": 3}}}
KS = (10, 20)
METRICS = ("ndcg", "recall", "hr")
REFERENCE = "als"


def parse_trials(text: str | None) -> dict[str, int]:
    out = dict(DEFAULT_TRIALS)
    for part in (text or "").split(","):
        if part.strip():
            name, _, n = part.partition("=")
            out[name.strip()] = int(n)
    return out


def run_one(dataset: str, protocol: str, models: list[str], trials: dict[str, int], retune: bool,
            config_root: Path, seed: int, log) -> dict:
    holdout, threshold = PROTOCOLS[protocol]
    ds = load_movielens(dataset)
    split = build_split(ds, "leave-last", holdout=holdout)
    train_full = split.train_full()
    per_user, rows, tuned = {}, [], {}
    for name in models:
        cls = get_class(name)
        fixed = FIXED.get(dataset, {}).get(name, {})
        path = tuned_path(config_root, dataset, protocol, name)
        doc = None if retune else load_tuned(path)
        tune_s = 0.0
        if doc is not None:
            params = doc["params"]
        elif hasattr(cls, "suggest_params") and trials.get(name, 0) > 0:
            t0 = time.perf_counter()
            params, study = tune_ranking(name, split, n_trials=trials[name], seed=seed,
                                         relevance_threshold=threshold, fixed_params=fixed)
            tune_s = time.perf_counter() - t0
            doc = {"params": params, "validation": {"ndcg@10": study.best_value, "n_trials": len(study.trials),
                                                    "relevance_threshold": threshold, "seed": seed}}
            save_tuned(path, params, doc["validation"])
        else:
            params = dict(fixed)
            if "seed" in cls().get_params():
                params["seed"] = seed
        tuned[name] = doc["params"] if doc else params
        model = create(name, **params)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # implicit's BLAS warning must not appear
            model.fit(train_full)
        fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        res = evaluate_ranking(model, train_full, split.test, ks=KS, metrics=METRICS, relevance_threshold=threshold)
        per_user[name] = res.per_user
        row = {"model": name, **{m: res.summary[m] for m in sorted(res.summary)}, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "tune_s": tune_s,
               "val_ndcg@10": (doc or {}).get("validation", {}).get("ndcg@10")}
        rows.append(row)
        log(f"  {dataset}/{protocol} {name:9s} ndcg@10={res.summary['ndcg@10']:.4f} fit {fit_s:.1f}s "
            f"(CPU {fit_cpu_s:.1f}s) tune {tune_s:.0f}s")
    cols = [f"{m}@{k}" for k in KS for m in METRICS]
    cis = confidence_intervals(per_user, ["ndcg@10", "ndcg@20"], n_resamples=1000, seed=seed)
    tests = compare_to_reference(per_user, REFERENCE, ["ndcg@10", "ndcg@20"]) if REFERENCE in per_user else None
    frame = pd.DataFrame(rows).set_index("model")
    return {
        "dataset": dataset, "protocol": protocol, "holdout": holdout, "relevance_threshold": threshold,
        "split": {"train": split.train.n_ratings, "validation": split.validation.n_ratings,
                  "test": split.test.n_ratings, "test_users": int(per_user[models[0]].shape[0])},
        "table": frame[cols + ["fit_s", "fit_cpu_s", "tune_s", "val_ndcg@10"]].reset_index().to_dict(orient="records"),
        "ci": cis,
        "vs_als": tests.to_dict(orient="records") if tests is not None else [],
        "params": tuned,
    }


def markdown(result: dict) -> str:
    t = pd.DataFrame(result["table"]).set_index("model")
    ease = t.loc["ease", "ndcg@10"] if "ease" in t.index else np.nan
    als = t.loc["als", "ndcg@10"] if "als" in t.index else np.nan
    tests = {(r["model"], r["metric"]): r for r in result["vs_als"]}
    lines = [
        f"**{result['dataset']}, {result['protocol']}** (test users {result['split']['test_users']}, "
        f"relevant: {'rating >= 4' if result['relevance_threshold'] else 'every held-out item'})",
        "",
        "| model | NDCG@10 [95% CI] | NDCG@20 | Recall@10 | Recall@20 | HR@10 | vs EASE | vs ALS | p (Holm, t / Wilcoxon) vs ALS | fit s (wall / CPU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, r in t.iterrows():
        lo, hi = result["ci"][name]["ndcg@10"]
        test = tests.get((name, "ndcg@10"))
        ptxt = "—" if test is None else f"{test['p_t_holm']:.1e} / {test['p_w_holm']:.1e}{' *' if test['significant'] else ''}"
        lines.append(
            f"| {name} | {r['ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}] | {r['ndcg@20']:.4f} | {r['recall@10']:.4f} | "
            f"{r['recall@20']:.4f} | {r['hr@10']:.4f} | {100 * (r['ndcg@10'] / ease - 1):+.1f}% | "
            f"{100 * (r['ndcg@10'] / als - 1):+.1f}% | {ptxt} | {r['fit_s']:.2f} / {r.get('fit_cpu_s', float('nan')):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--protocols", default="loo,last20")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    ap.add_argument("--trials", default=None, help="per-model trial counts, e.g. als=15,seq-ease=20")
    ap.add_argument("--retune", action="store_true", help="ignore cached tuned configs")
    ap.add_argument("--config-root", default=str(ROOT / "configs" / "tuned"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "topk.json"))
    args = ap.parse_args(argv)
    # SeqEASE's tuner draws lambda from a 6-value grid: keep every inverse while tuning
    ease_module._WEIGHTS_CACHE_SIZE = 6
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    available = []
    for m in models:
        try:
            get_class(m)
            available.append(m)
        except Exception as exc:  # a model another change has not landed yet
            print(f"skipping {m}: {exc}", file=sys.stderr)
    trials = parse_trials(args.trials)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results, t0 = [], time.perf_counter()
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            results.append(run_one(dataset, protocol, available, trials, args.retune, Path(args.config_root),
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
