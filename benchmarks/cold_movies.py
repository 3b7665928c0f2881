"""Cold-movie benchmark: ranking movies that have no ratings at all (issue 10, item 3).

For ML-100K and ml-latest-small, in one run (all through `movierec.experiments`):

1. The cold-movie protocol (`movierec.evaluation.cold_movies`): a seeded 10% of the
   movies are held out of training entirely (every rating of them is test), another 10%
   are validation cold movies carved from the training movies. Test users: users with
   a training history and at least one cold movie rated >= 4 (relevant).
2. Tune genre-pop and two-tower on the VALIDATION cold movies only (`experiments.tune`
   with `candidates` = the validation cold movies, recall@20, seeded TPE, ``--trials``
   each), or reuse ``configs/tuned/<dataset>/cold/<model>.json``.
3. `experiments.compare` with ``protocol="cold-movies"``: refit every model on train +
   validation, rank ONLY the test cold movies for every test user; recall@20, NDCG@20,
   HR@20 with bootstrap 95% CIs; paired tests (t-test and Wilcoxon, Holm-corrected)
   against genre-pop, the genre/popularity baseline.

`pop` and `random` are shown as floors: a cold movie has no training interaction, so pop
ranks the cold movies only by its tie-breaks (mean rating, then movie index): any skill
it shows comes from how the dataset numbered its movies (ML-100K's low IDs are its
popular 1990s films), not from data.

Target (issue 10): two-tower recall@20 >= 1.5 x genre-pop's.

Run:  .venv/bin/python benchmarks/cold_movies.py
      .venv/bin/python benchmarks/cold_movies.py --datasets ml-100k --trials 2 --out /tmp/cold.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

from movierec.data import load_movielens  # noqa: E402
from movierec.evaluation.cold_movies import PROTOCOL  # noqa: E402
from movierec.evaluation.protocols import build_split  # noqa: E402
from movierec.evaluation.stats import compare_to_reference  # noqa: E402
from movierec.experiments import CompareSpec, TunedConfig, compare, config_root, protocol_key, tune, tuned_path  # noqa: E402
from movierec.experiments.models import model_class  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from topk import available_models  # noqa: E402  (the sibling benchmark's model filter)

DEFAULT_MODELS = "random,pop,genre-pop,two-tower"
TUNED = ("genre-pop", "two-tower")
BASELINE = "genre-pop"
TARGET = "two-tower"
FRACTION = 0.1
K = 20
METRICS = ("recall", "ndcg", "hr")
TARGET_RATIO = 1.5
THRESHOLD = 4.0


def ensure_tuned(dataset: str, models: list[str], trials: int, retune: bool, root: Path, seed: int,
                 log) -> dict[str, dict]:
    """Tune (or reuse) genre-pop and two-tower on the validation cold movies."""
    key = protocol_key(PROTOCOL)
    split, out = None, {}
    for name in models:
        path = tuned_path(name, dataset, key, root)
        cfg = TunedConfig.load(path) if path.is_file() and not retune else None
        tune_s = 0.0
        if cfg is None and name in TUNED and model_class(name).search_space and trials > 0:
            if split is None:  # the very split compare makes (same seed): its validation cold movies
                split = build_split(load_movielens(dataset), PROTOCOL, holdout=FRACTION, seed=seed)
            t0 = time.perf_counter()
            cfg = tune(name, split, metric=f"recall@{K}", trials=trials, seed=seed, relevance_threshold=THRESHOLD,
                       dataset=dataset, protocol=key)  # ranks only the validation cold movies
            tune_s = time.perf_counter() - t0
            cfg.validation["candidates"] = "validation cold movies"
            cfg.save(path)
            log(f"  tuned {name} on {dataset}/cold in {tune_s:.0f}s: {cfg.params}")
        out[name] = {"config": cfg, "tune_s": tune_s}
    return out


def run_one(dataset: str, models: list[str], trials: int, retune: bool, root: Path, seed: int, log) -> dict:
    tuned = ensure_tuned(dataset, models, trials, retune, root, seed, log)
    comp = compare(CompareSpec(dataset=dataset, protocol=PROTOCOL, holdout=FRACTION, models=models, ks=(K,),
                               metrics=METRICS, relevance_threshold=THRESHOLD, seed=seed, config_root=root))
    cols = [f"{m}@{K}" for m in METRICS]
    per_user = {n: r.per_user for n, r in comp.results.items()}
    table = []
    for name, res in comp.results.items():
        timing, cfg = comp.info["timing"][name], tuned[name]["config"]
        table.append({"model": name, **{c: res.summary[c] for c in cols}, "fit_s": timing["fit_s"],
                      "tune_s": tuned[name]["tune_s"],
                      f"val_recall@{K}": cfg.validation.get(f"recall@{K}") if cfg else None})
        log(f"  {dataset} {name:10s} recall@{K}={res.summary[f'recall@{K}']:.4f} ndcg@{K}={res.summary[f'ndcg@{K}']:.4f}")
    tests = compare_to_reference(per_user, BASELINE, cols) if BASELINE in per_user else None
    split = comp.info["split"]
    recall = {r["model"]: r[f"recall@{K}"] for r in table}
    ratio = recall[TARGET] / recall[BASELINE] if TARGET in recall and BASELINE in recall and recall[BASELINE] else None
    return {
        "dataset": dataset, "protocol": PROTOCOL, "fraction": FRACTION, "k": K, "relevance_threshold": THRESHOLD,
        "split": {"train": split["n_train"], "validation": split.get("n_validation", 0), "test": split["n_test"],
                  "cold_movies": split["n_cold_items"], "validation_cold_movies": split.get("n_validation_cold_items"),
                  "test_users": int(per_user[models[0]].shape[0]), "seed": seed},
        "table": table,
        "ci": {n: {c: v for c, v in ci.items() if c in cols} for n, ci in comp.ci.items()},
        "vs_genre_pop": tests.to_dict(orient="records") if tests is not None else [],
        "ratio_recall@20": ratio, "target_ratio": TARGET_RATIO,
        "target_met": None if ratio is None else bool(ratio >= TARGET_RATIO),
        "params": {n: u["params"] for n, u in comp.info["models_config"].items()},
        "configs": {n: u["config"] for n, u in comp.info["models_config"].items()},
    }


def markdown(result: dict) -> str:
    tests = {(r["model"], r["metric"]): r for r in result["vs_genre_pop"]}
    s = result["split"]
    lines = [f"**{result['dataset']}, cold movies** ({s['cold_movies']} of the movies held out of training, "
             f"{s['test_users']} test users, relevant: rating >= 4; only cold movies ranked)", "",
             f"| model | Recall@{K} [95% CI] | NDCG@{K} [95% CI] | HR@{K} | vs genre-pop | "
             "p (Holm, t / Wilcoxon) vs genre-pop | fit s |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    base = next((r[f"recall@{K}"] for r in result["table"] if r["model"] == BASELINE), float("nan"))
    for r in result["table"]:
        name, ci = r["model"], result["ci"][r["model"]]
        test = tests.get((name, f"recall@{K}"))
        ptxt = "—" if test is None else f"{test['p_t_holm']:.1e} / {test['p_w_holm']:.1e}{' *' if test['significant'] else ''}"
        lines.append(f"| {name} | {r[f'recall@{K}']:.4f} [{ci[f'recall@{K}'][0]:.4f}, {ci[f'recall@{K}'][1]:.4f}] | "
                     f"{r[f'ndcg@{K}']:.4f} [{ci[f'ndcg@{K}'][0]:.4f}, {ci[f'ndcg@{K}'][1]:.4f}] | {r[f'hr@{K}']:.4f} | "
                     f"{r[f'recall@{K}'] / base:.2f}x | {ptxt} | {r['fit_s']:.2f} |")
    if result["ratio_recall@20"] is not None:
        lines += ["", f"two-tower / genre-pop recall@{K}: {result['ratio_recall@20']:.2f}x "
                      f"(target {TARGET_RATIO}x: {'met' if result['target_met'] else 'missed'})"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    ap.add_argument("--trials", type=int, default=20, help="tuning trials for genre-pop and two-tower (same budget)")
    ap.add_argument("--retune", action="store_true", help="ignore cached tuned configs")
    ap.add_argument("--config-root", default=str(config_root()))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cold_movies.json"))
    args = ap.parse_args(argv)
    models = available_models(args.models)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results, t0 = [], time.perf_counter()
    for dataset in args.datasets.split(","):
        results.append(run_one(dataset, models, args.trials, args.retune, Path(args.config_root), args.seed, log))
        print(markdown(results[-1]), flush=True)
    total = time.perf_counter() - t0
    print(f"total {total:.0f}s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "total_seconds": total, "argv": sys.argv[1:]}, indent=1,
                              default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
