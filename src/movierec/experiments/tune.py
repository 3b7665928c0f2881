"""Hyperparameter search on validation data only: one seeded Optuna TPE loop for every model.

`tune` samples the model's declared `search_space` (`movierec.models.space`), fits on
``split.train`` and scores on ``split.validation``; ``split.test`` is never read.

* Ranking metrics ("ndcg@10", any "<metric>@<k>" of the evaluation runner) are
  maximised; the model gets the validation part for early stopping, and is ranked over
  the whole catalog with its training items excluded.
* Rating metrics ("rmse", "mae") are minimised; the model is fitted on the training part
  alone (rating models that early-stop carve their own hold-out from it), exactly as
  rating evaluation fits it, so the validation part only scores the trial.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from movierec.data.dataset import Dataset
from movierec.data.split import Split
from movierec.errors import ConfigError
from movierec.evaluation.protocols import get_protocol, protocol_of
from movierec.experiments.configs import TunedConfig
from movierec.experiments.data import dataset_name
from movierec.experiments.models import build_model, check_params, model_class
from movierec.models.space import suggest
from movierec.training.options import RuntimeOptions, runtime_options

RATING_METRICS = ("rmse", "mae")


def default_metric(model_name: str) -> str:
    """"rmse" for models that predict ratings, "ndcg@10" for the others."""
    return "rmse" if model_class(model_name).capabilities.predicts_ratings else "ndcg@10"


def validation_score(model, train: Dataset, validation: Dataset, metric: str,
                     relevance_threshold: float | None = None, candidates=None) -> dict[str, float]:
    """`metric` (and, for rating metrics, RMSE and MAE) of a fitted model on `validation`;
    `train` items are excluded from the rankings, which hold only `candidates` when given
    (a boolean mask over movie indices, as `evaluation.runner.evaluate_ranking`)."""
    from movierec.evaluation.runner import evaluate_ranking, evaluate_ratings

    if metric in RATING_METRICS:
        res = evaluate_ratings(model, validation)
        return {"rmse": res["rmse"], "mae": res["mae"]}
    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise ConfigError(f"The tuning metric must be 'rmse', 'mae' or look like 'ndcg@10', got {metric!r}.")
    result = evaluate_ranking(model, train, validation, ks=(int(k),), metrics=(name,),
                              relevance_threshold=relevance_threshold, candidates=candidates)
    return {metric: float(result.summary[metric])}


def tuning_split(ds: Dataset, protocol: str = "random", holdout: float | None = None, seed: int = 42,
                 validation_fraction: float = 0.1) -> Split:
    """The split a protocol tunes on: its validation part carved from training data only
    (the registered protocol's `tuning_split`).

    leave-last: the split `compare` makes (validation = the interactions just before each
    user's test part); cold-movies: the split `compare` makes (validation = the ratings of
    a second share of movies, held out of the fit part). Other protocols: the
    rating-evaluation split (for ml100k-folds, fold u1), whose training part is cut into a
    fit part and a validation share (`validation_fraction`; seeded random, or the latest
    share for temporal).

    Raises:
        ConfigError: unknown protocol, a bad share, or a split without validation data.
    """
    return get_protocol(protocol).tuning_split(ds, holdout, seed, validation_fraction)


def tune(
    model_name: str,
    split: Split,
    metric: str | None = None,
    trials: int = 20,
    seed: int = 42,
    fixed: dict[str, Any] | None = None,
    relevance_threshold: float | None = None,
    progress: Callable[[int, float, dict[str, Any]], None] | None = None,
    *,
    dataset: str | None = None,
    protocol: str | None = None,
    timeout: float | None = None,
    candidates=None,
    runtime: RuntimeOptions | None = None,
) -> TunedConfig:
    """Search a registered model's hyperparameters with a seeded TPE search on validation data.

    Args:
        model_name: registry name; its class must declare a non-empty `search_space`.
        split: a Split with a validation part; only train and validation are read.
        metric: "rmse"/"mae" (minimised) or "<metric>@<k>" (maximised); default "rmse"
            for models that predict ratings, else "ndcg@10".
        trials: Optuna trials (>= 1).
        seed: seed of the sampler and of every fit (replaces `runtime.seed`), and of
            models that take one as a hyperparameter unless `fixed` sets it.
        fixed: hyperparameters held fixed (not searched).
        relevance_threshold: validation ratings >= this are relevant (ranking metrics);
            None = every validation interaction.
        progress: called after every trial with (trial number, value, params).
        dataset: dataset name recorded in the result (default: from the split's data).
        protocol: protocol key recorded in the result (default: the `config_key` of the
            protocol that made the split, from ``split.info``).
        timeout: stop starting new trials after this many seconds.
        candidates: rank only these movies (boolean mask over movie indices); default:
            the validation candidates of the protocol that made the split (the
            validation cold movies for cold-movies), else all.
        runtime: how each trial's fit trains (device, threads, ...; see
            `movierec.training.options`).

    Returns:
        TunedConfig with the best trial's parameters (fixed ones and the seed included)
        and its validation metrics (not saved: call `.save()`).
    """
    import optuna

    cls = model_class(model_name)
    space = dict(getattr(cls, "search_space", {}) or {})
    if not space:
        raise ConfigError(f"Model {model_name!r} declares no search space, so it cannot be tuned.")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"The number of trials must be at least 1, got {trials!r}.")
    if split.validation is None or split.validation.n_ratings == 0:
        raise ConfigError("Tuning needs a split with a validation part.")
    metric = metric or default_metric(model_name)
    minimise = metric in RATING_METRICS
    if minimise and not cls.capabilities.predicts_ratings:
        raise ConfigError(f"Model {model_name!r} ranks movies and does not predict ratings, so {metric} does not apply.")
    owner = protocol_of(split)
    if candidates is None and owner is not None:
        candidates = owner.candidates(split, "validation")  # e.g. cold-movies ranks only its cold movies
    fixed = dict(fixed or {})
    check_params(model_name, fixed)
    takes_seed = "seed" in cls.default_params()
    fit_runtime = runtime_options(runtime, seed)

    def params_of(trial) -> dict[str, Any]:
        params = {**suggest(space, trial), **fixed}
        if takes_seed and "seed" not in params:
            params["seed"] = seed
        return params

    def objective(trial) -> float:
        params = params_of(trial)
        model = build_model(model_name, params)
        start = time.perf_counter()
        if minimise:
            model.fit(split.train, runtime=fit_runtime)
        else:
            model.fit(split.train, split.validation, runtime=fit_runtime)
        trial.set_user_attr("fit_seconds", time.perf_counter() - start)
        scores = validation_score(model, split.train, split.validation, metric, relevance_threshold, candidates)
        for key, value in scores.items():
            trial.set_user_attr(key, value)
        best_epoch = model.best_epoch_
        if best_epoch:
            trial.set_user_attr("best_epoch", int(best_epoch))
        if progress is not None:
            progress(trial.number, scores[metric], params)
        return scores[metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if minimise else "maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=timeout)
    best = study.best_trial
    params = params_of(optuna.trial.FixedTrial(best.params))
    validation: dict[str, Any] = {"metric": metric, metric: best.value}
    if minimise:
        validation.update({"rmse": best.user_attrs.get("rmse"), "mae": best.user_attrs.get("mae"),
                           "best_epoch": best.user_attrs.get("best_epoch")})
    else:
        validation["relevance_threshold"] = relevance_threshold
    validation.update({"n_trials": len(study.trials), "seed": seed, "n_fit": int(split.train.n_ratings),
                       "n_validation": int(split.validation.n_ratings), "best_trial": best.number})
    if protocol is None and owner is not None:
        protocol = owner.config_key(split.info.get("holdout", split.info.get("k")))
    elif protocol is None:
        protocol = split.info.get("protocol")  # made outside the registry (e.g. kfold_splits): its own name
    return TunedConfig(model=model_name, params=params, dataset=dataset or dataset_name(split.train),
                       protocol=protocol, validation=validation,
                       trials=len(study.trials), seed=seed)


__all__ = ["RATING_METRICS", "default_metric", "tune", "tuning_split", "validation_score"]
