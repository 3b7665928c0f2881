"""Rating prediction on the canonical ML-100K folds u1..u5: movierec vs scikit-surprise.

Run (from the repository root)::

    .venv/bin/python benchmarks/explicit_ml100k.py            # the full table (~15 min on 2 cores)
    .venv/bin/python benchmarks/explicit_ml100k.py --folds u1 # one fold
    .venv/bin/python benchmarks/explicit_ml100k.py --tune     # redo the validation selection first
    .venv/bin/python benchmarks/explicit_ml100k.py --folds u1 --no-surprise --no-blend --out /tmp/x.json  # smoke

Every algorithm is fitted on a fold's training file and scored on its test file, in the
same run (`movierec.experiments.evaluate_ratings`). No hyperparameter is ever chosen on a
test fold: movierec's defaults were selected on validation ratings carved (seeded, 10 %)
from the *training* part of u1 (`--tune` reruns a selection with `experiments.tune`, the
same seeded search `movierec tune` runs, over each base model's declared search space,
with `--trials` trials each); every model that early-stops or blends carves its own
validation share from the training fold it is given. Surprise
runs with its library defaults (SVD, SVD++, BaselineOnly), which are the settings its
published ML-100K figures use.

The blend refits each base model on the whole training fold with the base's own
hyperparameters; those refitted bases are exactly what `movierec` fits for the base
names alone (same class, parameters and seed), so their test RMSE is reported as the
base model's row and their refit time as its fit time, instead of fitting them twice.

The tuned `mf` configuration (`configs/tuned/ml-100k/ml100k-folds/mf.json`, chosen on
validation inside u1.base) is scored on the same folds too, apart from the table.
Everything is written to benchmarks/results/explicit_ml100k.json (`--out` elsewhere), which
`benchmarks/render.py` turns into BENCHMARKS.md's table and README's headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

from movierec.data import load_movielens  # noqa: E402
from movierec.evaluation.metrics import mae, rmse  # noqa: E402
from movierec.evaluation.protocols import build_splits  # noqa: E402
from movierec.evaluation.runner import evaluate_ratings as score_ratings  # noqa: E402
from movierec.experiments import TunedConfig, build_model, evaluate_ratings, tune as tune_model, tuning_split  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import ROOT, write_results  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")
TUNED_MF = Path("configs/tuned/ml-100k/ml100k-folds/mf.json")


def summarize(per: dict[str, dict], folds: list[str]) -> dict:
    """Means over the folds of one algorithm's per-fold {rmse, mae, fit_s}, plus its per-fold RMSE."""
    done = [f for f in folds if f in per]
    fits = [per[f]["fit_s"] for f in done]
    return {"rmse": float(np.mean([per[f]["rmse"] for f in done])),
            "mae": float(np.mean([per[f]["mae"] for f in done])),
            "fit_s": float(np.mean(fits)), "fit_s_median": float(np.median(fits)),
            "folds": {f: float(per[f]["rmse"]) for f in done}}


def blend_rows(model) -> dict[str, dict]:
    """The blend's refitted bases, as rows of their own (see the module docstring)."""
    rows = {}
    for (name, _), base in zip(model._specs(), model.bases_):
        rows[label(name, base.get_params())] = {"model": base, "fit_s": model.base_fit_seconds_[name]}
    return rows


def label(name: str, params: dict) -> str:
    """Row name: the model name plus its parameters that differ from the class defaults."""
    from movierec.models import get_class

    defaults = get_class(name)().get_params()
    diff = {k: v for k, v in params.items() if defaults.get(k) != v}
    return name + (" (" + ", ".join(f"{k}={v}" for k, v in diff.items()) + ")" if diff else "")


def score(model, test) -> tuple[float, float]:
    res = score_ratings(model, test)
    return res["rmse"], res["mae"]


def run_surprise(train, test) -> dict[str, dict]:
    import pandas as pd
    from surprise import SVD, BaselineOnly, Dataset as SDataset, Reader, SVDpp

    frame = pd.DataFrame({"u": train.user_idx, "i": train.item_idx, "r": train.rating.astype(float)})
    trainset = SDataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    pairs = list(zip(test.user_idx.tolist(), test.item_idx.tolist(), test.rating.astype(float).tolist()))
    out = {}
    for name, algo in (
        ("surprise BaselineOnly", BaselineOnly(verbose=False)),
        ("surprise SVD", SVD(random_state=0)),
        ("surprise SVD++", SVDpp(random_state=0)),
    ):
        start = time.perf_counter()
        algo.fit(trainset)
        fit_s = time.perf_counter() - start
        pred = np.array([p.est for p in algo.test(pairs)])
        out[name] = {"rmse": rmse(pred, test.rating), "mae": mae(pred, test.rating), "fit_s": fit_s}
    return out


def tune(ds, log, fixed: dict, trials: int) -> dict:
    """Re-select the blend's base models' hyperparameters on validation carved from u1's
    training file (never its test), with the pipeline's one tuner; `fixed` holds each
    model's parameters that stay as they are."""
    split = tuning_split(ds, "ml100k-folds", seed=0, validation_fraction=0.1)
    chosen = {}
    for name in ("autorec", "bpmf", "item-knn"):
        cfg = tune_model(name, split, metric="rmse", trials=trials, seed=0, fixed=fixed.get(name),
                         progress=lambda n, v, p, name=name: log(f"  tune {name} trial {n}: validation RMSE {v:.4f}"))
        chosen[name] = cfg.params
    log(f"  chosen on u1-train validation: {chosen}")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", default=",".join(FOLDS), help="comma-separated folds (default u1..u5)")
    parser.add_argument("--no-surprise", action="store_true", help="skip the scikit-surprise peers")
    parser.add_argument("--tune", action="store_true", help="re-select hyperparameters on u1-train validation")
    parser.add_argument("--trials", type=int, default=20, help="tuning trials per model (with --tune)")
    parser.add_argument("--no-blend", action="store_true", help="skip the blend and its bases (quick runs)")
    parser.add_argument("--tuned-mf", type=Path, default=TUNED_MF,
                        help="tuned mf config scored on the same folds (relative to the repository root)")
    parser.add_argument("--no-tuned-mf", action="store_true", help="skip the tuned mf config")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/explicit_ml100k.json)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    ds = load_movielens("ml-100k")
    from movierec.models.blend import DEFAULT_BASES

    base_params = {name: dict(params) for name, params in DEFAULT_BASES}
    base_params.update({"item-knn": {}, "mf": {}})
    if args.tune:
        for name, chosen in tune(ds, log, base_params, args.trials).items():
            base_params[name] = {**base_params.get(name, {}), **chosen}
    # the blend as `movierec evaluate --model blend` fits it (its default bases), unless --tune
    blend_bases = [[name, base_params[name]] for name, _ in DEFAULT_BASES]

    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    results: dict[str, dict[str, dict]] = {}
    tuned_mf: dict[str, dict] = {}
    tuned_path = args.tuned_mf if args.tuned_mf.is_absolute() else ROOT / args.tuned_mf
    tuned_cfg = None if args.no_tuned_mf or not tuned_path.is_file() else TunedConfig.load(tuned_path)

    def record(name: str, fold: str, values: dict) -> None:
        results.setdefault(name, {})[fold] = values
        log(f"  {fold} {name:24s} RMSE {values['rmse']:.4f}  MAE {values['mae']:.4f}  fit {values['fit_s']:.1f}s")

    splits = {s.info["fold"]: s for s in build_splits(ds, "ml100k-folds", validation=False, drop_unseen_test=False)}
    for fold in folds:
        split = splits[fold]
        train, test = split.train, split.test
        log(f"fold {fold}: train {train.n_ratings:,}, test {test.n_ratings:,}")
        for name in ("global-mean", "bias", "mf", "item-knn"):
            row = evaluate_ratings(name, split, params=base_params.get(name, {}), seed=None).folds[0]
            record(name, fold, {"rmse": row["rmse"], "mae": row["mae"], "fit_s": row["fit_seconds"]})
        if tuned_cfg is not None:
            row = evaluate_ratings("mf", split, params=tuned_cfg.params, seed=None).folds[0]
            tuned_mf[fold] = {"rmse": row["rmse"], "mae": row["mae"], "fit_s": row["fit_seconds"]}
            log(f"  {fold} {'mf (tuned config)':24s} RMSE {row['rmse']:.4f}  fit {row['fit_seconds']:.1f}s")
        if not args.no_blend:
            start = time.perf_counter()
            blend = build_model("blend", {"models": blend_bases}).fit(train)
            fit_s = time.perf_counter() - start
            r, m = score(blend, test)
            rows = blend_rows(blend)
            for name, row in rows.items():
                br, bm = score(row["model"], test)
                record(name, fold, {"rmse": br, "mae": bm, "fit_s": row["fit_s"]})
            record("blend", fold, {"rmse": r, "mae": m, "fit_s": fit_s,
                                   "weights": blend.coef_.tolist(), "validation": blend.validation_rmse_})
        if not args.no_surprise:
            for name, values in run_surprise(train, test).items():
                record(name, fold, values)

    order = ["global-mean", "bias", "surprise BaselineOnly", "surprise SVD", "surprise SVD++", "mf", "item-knn"]
    names = [n for n in order if n in results] + [n for n in results if n not in order and n != "blend"]
    names += ["blend"] if "blend" in results else []
    head = f"| algorithm | mean RMSE | mean MAE | mean fit s | " + " | ".join(f"{f} RMSE" for f in folds) + " |"
    print(head)
    print("|" + "---|" * (4 + len(folds)))
    for name in names:
        per = results[name]
        mean = {k: float(np.mean([per[f][k] for f in folds if f in per])) for k in ("rmse", "mae", "fit_s")}
        cells = " | ".join(f"{per[f]['rmse']:.4f}" if f in per else "-" for f in folds)
        print(f"| {name} | {mean['rmse']:.4f} | {mean['mae']:.4f} | {mean['fit_s']:.1f} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps({"folds": folds, "base_params": base_params, "results": results}, indent=2))
    figures = {"folds": folds, "order": names, "summary": {n: summarize(results[n], folds) for n in names},
               "results": results, "base_params": base_params, "tuned": {}}
    if tuned_mf:
        figures["tuned"]["mf"] = {**summarize(tuned_mf, folds), "config": str(args.tuned_mf),
                                  "params": tuned_cfg.params, "per_fold": tuned_mf}
    log(f"results: {write_results('explicit_ml100k', figures, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
