"""Rating prediction on the canonical ML-100K folds u1..u5: movierec vs scikit-surprise.

Run (from the repository root)::

    .venv/bin/python benchmarks/explicit_ml100k.py            # the full table (~15 min on 2 cores)
    .venv/bin/python benchmarks/explicit_ml100k.py --folds u1 # one fold
    .venv/bin/python benchmarks/explicit_ml100k.py --tune     # redo the validation selection first
    .venv/bin/python benchmarks/explicit_ml100k.py --folds u1 --no-surprise --no-blend --out /tmp/x.json  # smoke
    .venv/bin/python benchmarks/explicit_ml100k.py --select-mf --no-blend  # re-select mf's tuned config first
    .venv/bin/python benchmarks/explicit_ml100k.py --no-blend --svd-only  # mf vs Surprise SVD (~1 min)

Every algorithm is fitted on a fold's training file and scored on its test file, in the
same run, as `movierec evaluate` fits it (`experiments.build_model`, default runtime
options: one torch thread, seed 42). No hyperparameter is ever chosen on a
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

The tuned `mf` configuration (`configs/tuned/ml-100k/ml100k-folds/mf.json`) is scored on
the same folds too, apart from the table. It is mf with a fixed number of epochs (no
early stopping, no refit: one training run per fold), chosen on validation only by
`--select-mf` (`select_mf`): five seeded 10 % hold-outs of u1.base, 20 settings of Adam's
ε and the learning rate, the epoch count with the lowest mean validation RMSE (at most
`MF_SELECT_MAX_EPOCHS`, the time budget).

Timing: every fit is timed alone, wall-clock (`fit_s`) and CPU seconds of this process
(`cpu_s`), with the libraries imported before any timer (Surprise's import and its trainset
were never timed; torch's import, 1-3 s once per process, is paid up front too). In each
fold Surprise SVD, `mf` and the tuned `mf` are fitted back to back, so a busy machine
slows them alike; the load average is logged per fold and recorded (`load_average`), and
`head_to_head` holds the medians over the folds and the per-fold ratios to SVD.
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
from movierec.experiments import TunedConfig, build_model, tune as tune_model, tuning_split  # noqa: E402
from movierec.training.options import RuntimeOptions  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import ROOT, write_results  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")
TUNED_MF = Path("configs/tuned/ml-100k/ml100k-folds/mf.json")
SVD = "surprise SVD"
#: `--select-mf`: the settings compared (Adam's ε x learning rate; mf's defaults otherwise) ...
MF_SELECT_EPS = (1e-8, 3e-5, 1e-4, 2e-4, 5e-4)
MF_SELECT_LR = (0.01, 0.015, 0.02, 0.03)
#: ... on these seeded 10 % hold-outs of u1.base (each fit seeded alike) ...
MF_SELECT_SEEDS = (0, 1, 2, 3, 4)
#: ... for at most this many epochs: the time budget. An epoch of a fold costs ~0.05x Surprise
#: SVD's whole fit on one thread, measured on a busy machine, which flatters mf (the old
#: default measured 1.16x SVD there and 1.5x on a quiet one); 9 epochs keep a fold's fit near
#: 0.6x SVD's on a quiet machine (the early-stopping default trains ~18 epochs)
MF_SELECT_MAX_EPOCHS = 9


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def summarize(per: dict[str, dict], folds: list[str]) -> dict:
    """Means over the folds of one algorithm's per-fold {rmse, mae, fit_s, cpu_s}, the
    medians of its times, and its per-fold RMSE."""
    done = [f for f in folds if f in per]
    fits = [per[f]["fit_s"] for f in done]
    out = {"rmse": float(np.mean([per[f]["rmse"] for f in done])),
           "mae": float(np.mean([per[f]["mae"] for f in done])),
           "fit_s": float(np.mean(fits)), "fit_s_median": float(np.median(fits)),
           "folds": {f: float(per[f]["rmse"]) for f in done}}
    cpus = [per[f]["cpu_s"] for f in done if "cpu_s" in per[f]]
    if cpus and len(cpus) == len(done):
        out.update({"cpu_s": float(np.mean(cpus)), "cpu_s_median": float(np.median(cpus))})
    return out


def head_to_head(rows: dict[str, dict], peer: dict[str, dict], folds: list[str]) -> dict | None:
    """One `mf` row against Surprise SVD on the folds both ran: mean RMSE, medians of the
    fit's wall and CPU seconds, and the median of the per-fold ratios (mf / SVD)."""
    done = [f for f in folds if f in rows and f in peer]
    if not done:
        return None
    out: dict = {"folds": done, "rmse": float(np.mean([rows[f]["rmse"] for f in done])),
                 "svd_rmse": float(np.mean([peer[f]["rmse"] for f in done]))}
    for key in ("fit_s", "cpu_s"):
        mine, theirs = [rows[f][key] for f in done], [peer[f][key] for f in done]
        out[f"{key}_median"] = float(np.median(mine))
        out[f"svd_{key}_median"] = float(np.median(theirs))
        out[f"{key}_ratio_median"] = float(np.median([a / max(b, 1e-9) for a, b in zip(mine, theirs)]))
    return out


def timed_fit(name: str, params: dict, train, test) -> dict:
    """Fit a registered model on `train` as `movierec evaluate` does (default runtime
    options) and score it on `test`: {rmse, mae, fit_s (wall), cpu_s (this process)}."""
    model = build_model(name, params)
    cpu, start = time.process_time(), time.perf_counter()
    model.fit(train, runtime=RuntimeOptions())
    fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    r, m = score(model, test)
    return {"rmse": r, "mae": m, "fit_s": fit_s, "cpu_s": cpu_s}


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


def run_surprise(train, test, names: tuple[str, ...]) -> dict[str, dict]:
    """Surprise's algorithms `names` (of "surprise BaselineOnly", "surprise SVD", "surprise
    SVD++") fitted on `train` with their library defaults and scored on `test`."""
    import pandas as pd
    from surprise import SVD as SurpriseSVD, BaselineOnly, Dataset as SDataset, Reader, SVDpp

    algos = {"surprise BaselineOnly": lambda: BaselineOnly(verbose=False),
             SVD: lambda: SurpriseSVD(random_state=0), "surprise SVD++": lambda: SVDpp(random_state=0)}
    frame = pd.DataFrame({"u": train.user_idx, "i": train.item_idx, "r": train.rating.astype(float)})
    trainset = SDataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    pairs = list(zip(test.user_idx.tolist(), test.item_idx.tolist(), test.rating.astype(float).tolist()))
    out = {}
    for name in names:
        algo = algos[name]()
        cpu, start = time.process_time(), time.perf_counter()
        algo.fit(trainset)
        fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        pred = np.array([p.est for p in algo.test(pairs)])
        out[name] = {"rmse": rmse(pred, test.rating), "mae": mae(pred, test.rating), "fit_s": fit_s, "cpu_s": cpu_s}
    return out


def select_mf(ds, log) -> TunedConfig:
    """mf's fixed-epoch setting for the folds, chosen on validation data only.

    Each setting (`MF_SELECT_EPS` x `MF_SELECT_LR`, mf's defaults otherwise) trains on the
    fit part of five seeded 10 % hold-outs of u1.base (`MF_SELECT_SEEDS`; the fit's seed
    is the hold-out's) with its validation RMSE recorded after every epoch, up to
    `MF_SELECT_MAX_EPOCHS`. The setting and epoch count with the lowest validation RMSE,
    averaged over the five hold-outs, win; the config trains that many epochs on all of a
    fold's training ratings (patience 0: no early stopping, no refit).
    """
    splits = [tuning_split(ds, "ml100k-folds", seed=seed, validation_fraction=0.1) for seed in MF_SELECT_SEEDS]
    epochs = MF_SELECT_MAX_EPOCHS
    best: tuple[float, dict, int] | None = None
    for eps in MF_SELECT_EPS:
        for lr in MF_SELECT_LR:
            params = {"adam_eps": eps, "lr": lr}
            curves = []
            for seed, split in zip(MF_SELECT_SEEDS, splits):
                model = build_model("mf", {**params, "epochs": epochs, "patience": epochs})
                model.fit(split.train, split.validation, runtime=RuntimeOptions(seed=seed))
                curves.append(model.history_.column("val"))
            mean = np.mean(curves, axis=0)
            epoch = int(np.argmin(mean)) + 1
            log(f"  select mf adam_eps={eps:g} lr={lr:g}: validation RMSE {mean[epoch - 1]:.4f} at epoch {epoch}")
            if best is None or mean[epoch - 1] < best[0]:
                best = (float(mean[epoch - 1]), params, epoch)
    value, params, epoch = best
    defaults = build_model("mf").get_params()
    chosen = {key: defaults[key] for key in ("dim", "reg", "reg_bias", "batch_size", "init_std", "output_range")}
    chosen.update({**params, "epochs": epoch, "patience": 0})
    n_trials = len(MF_SELECT_EPS) * len(MF_SELECT_LR)
    validation = {"metric": "rmse", "rmse": value, "best_epoch": epoch, "n_trials": n_trials, "seed": 0,
                  "n_fit": int(splits[0].train.n_ratings), "n_validation": int(splits[0].validation.n_ratings),
                  "holdout_seeds": list(MF_SELECT_SEEDS), "max_epochs": epochs,
                  "how": "benchmarks/explicit_ml100k.py --select-mf: mean validation RMSE over five seeded 10 % "
                         "hold-outs of u1.base, after each epoch; Adam's eps x learning rate, mf's defaults otherwise"}
    return TunedConfig(model="mf", params=chosen, dataset="ml-100k", protocol="ml100k-folds", validation=validation,
                       trials=n_trials, seed=0)


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
    parser.add_argument("--svd-only", action="store_true",
                        help="of Surprise, fit SVD only (mf's peer; skips BaselineOnly and the slow SVD++)")
    parser.add_argument("--tune", action="store_true", help="re-select hyperparameters on u1-train validation")
    parser.add_argument("--trials", type=int, default=20, help="tuning trials per model (with --tune)")
    parser.add_argument("--no-blend", action="store_true", help="skip the blend and its bases (quick runs)")
    parser.add_argument("--tuned-mf", type=Path, default=TUNED_MF,
                        help="tuned mf config scored on the same folds (relative to the repository root)")
    parser.add_argument("--no-tuned-mf", action="store_true", help="skip the tuned mf config")
    parser.add_argument("--select-mf", action="store_true",
                        help="re-select the tuned mf config on u1.base validation (select_mf) and write it to --tuned-mf")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/explicit_ml100k.json)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import torch  # noqa: F401  (imported before any timer, as Surprise is: see the module doc)

    loads = {"start": load_average()}
    log(f"load average at start: {loads['start']}")
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
    if args.select_mf:
        log(f"  wrote {select_mf(ds, log).save(tuned_path)}")
    tuned_cfg = None if args.no_tuned_mf or not tuned_path.is_file() else TunedConfig.load(tuned_path)

    def record(name: str, fold: str, values: dict) -> None:
        results.setdefault(name, {})[fold] = values
        cpu = f"  cpu {values['cpu_s']:.2f}s" if "cpu_s" in values else ""
        log(f"  {fold} {name:24s} RMSE {values['rmse']:.4f}  MAE {values['mae']:.4f}  fit {values['fit_s']:.2f}s{cpu}")

    splits = {s.info["fold"]: s for s in build_splits(ds, "ml100k-folds", validation=False, drop_unseen_test=False)}
    loads["folds"] = {}
    for fold in folds:
        split = splits[fold]
        train, test = split.train, split.test
        loads["folds"][fold] = load_average()
        log(f"fold {fold}: train {train.n_ratings:,}, test {test.n_ratings:,}; load average {loads['folds'][fold]}")
        # Surprise SVD, mf and the tuned mf back to back: the timings compared share the machine's state
        if not args.no_surprise:
            record(SVD, fold, run_surprise(train, test, (SVD,))[SVD])
        record("mf", fold, timed_fit("mf", base_params["mf"], train, test))
        if tuned_cfg is not None:
            tuned_mf[fold] = timed_fit("mf", tuned_cfg.params, train, test)
            log(f"  {fold} {'mf (tuned config)':24s} RMSE {tuned_mf[fold]['rmse']:.4f}  "
                f"fit {tuned_mf[fold]['fit_s']:.2f}s  cpu {tuned_mf[fold]['cpu_s']:.2f}s")
        for name in ("global-mean", "bias", "item-knn"):
            record(name, fold, timed_fit(name, base_params.get(name, {}), train, test))
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
        if not args.no_surprise and not args.svd_only:
            for name, values in run_surprise(train, test, ("surprise BaselineOnly", "surprise SVD++")).items():
                record(name, fold, values)
    loads["end"] = load_average()
    log(f"load average at end: {loads['end']}")

    order = ["global-mean", "bias", "surprise BaselineOnly", "surprise SVD", "surprise SVD++", "mf", "item-knn"]
    names = [n for n in order if n in results] + [n for n in results if n not in order and n != "blend"]
    names += ["blend"] if "blend" in results else []
    head = "| algorithm | mean RMSE | mean MAE | mean fit s | " + " | ".join(f"{f} RMSE" for f in folds) + " |"
    print(head)
    print("|" + "---|" * (4 + len(folds)))
    for name in names:
        per = results[name]
        mean = {k: float(np.mean([per[f][k] for f in folds if f in per])) for k in ("rmse", "mae", "fit_s")}
        cells = " | ".join(f"{per[f]['rmse']:.4f}" if f in per else "-" for f in folds)
        print(f"| {name} | {mean['rmse']:.4f} | {mean['mae']:.4f} | {mean['fit_s']:.1f} | {cells} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"folds": folds, "base_params": base_params, "results": results}, indent=2))
    figures = {"folds": folds, "order": names, "summary": {n: summarize(results[n], folds) for n in names},
               "results": results, "base_params": base_params, "tuned": {}, "load_average": loads,
               "head_to_head": {}}
    if tuned_mf:
        figures["tuned"]["mf"] = {**summarize(tuned_mf, folds), "config": str(args.tuned_mf),
                                  "params": tuned_cfg.params, "per_fold": tuned_mf}
    if SVD in results:
        for label_, rows in (("mf", results.get("mf", {})), ("mf (tuned config)", tuned_mf)):
            versus = head_to_head(rows, results[SVD], folds)
            if versus is not None:
                figures["head_to_head"][label_] = versus
                log(f"{label_} vs {SVD}: mean RMSE {versus['rmse']:.4f} vs {versus['svd_rmse']:.4f}; median fit "
                    f"{versus['fit_s_median']:.2f}s vs {versus['svd_fit_s_median']:.2f}s (per-fold ratio "
                    f"{versus['fit_s_ratio_median']:.2f}), CPU {versus['cpu_s_median']:.2f}s vs "
                    f"{versus['svd_cpu_s_median']:.2f}s (ratio {versus['cpu_s_ratio_median']:.2f})")
    log(f"results: {write_results('explicit_ml100k', figures, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
