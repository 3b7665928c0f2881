"""Hyperparameter search for top-K ranking models, on the validation part only.

`tune_ranking` fits a registered model on ``split.train`` for every Optuna trial and
scores it on ``split.validation`` (full ranking, training items excluded). The test part
is never read. Each model class describes its search space in the classmethod
``suggest_params(trial) -> dict``.

Tuned configurations are JSON files ``{"params": {...}, "validation": {...}}``, by
convention at ``configs/tuned/<dataset>/<protocol>/<model>.json`` (`tuned_path`), which
`movierec compare --config-dir` reads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from movierec.data.split import Split
from movierec.errors import ConfigError

log = logging.getLogger(__name__)


def tuned_path(root: str | Path, dataset: str, protocol: str, model: str) -> Path:
    """``<root>/<dataset>/<protocol>/<model>.json``."""
    return Path(root) / dataset / protocol / f"{model}.json"


def save_tuned(path: str | Path, params: dict[str, Any], validation: dict[str, Any]) -> Path:
    """Write a tuned configuration (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"params": params, "validation": validation}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_tuned(path: str | Path) -> dict[str, Any] | None:
    """The saved document ({"params", "validation"}) or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ConfigError(f"Tuned config {path} is not valid JSON; fix or delete it.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
        raise ConfigError(f"Tuned config {path} must hold a \"params\" object.")
    return doc


def validation_score(model, split: Split, metric: str = "ndcg@10", relevance_threshold: float | None = None) -> float:
    """`metric` of a model fitted on split.train, measured on split.validation."""
    from movierec.evaluation.runner import evaluate_ranking

    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise ConfigError(f"metric must look like 'ndcg@10', got {metric!r}.")
    result = evaluate_ranking(
        model, split.train, split.validation, ks=(int(k),), metrics=(name,), relevance_threshold=relevance_threshold
    )
    return float(result.summary[metric])


def tune_ranking(
    model_name: str,
    split: Split,
    n_trials: int = 20,
    seed: int = 42,
    metric: str = "ndcg@10",
    relevance_threshold: float | None = None,
    fixed_params: dict[str, Any] | None = None,
    timeout: float | None = None,
):
    """Tune a registered ranking model with a seeded TPE search on the validation part.

    Args:
        model_name: registry name ("als", "ease", "seq-ease", ...); its class must define
            ``suggest_params(trial)``.
        split: a Split with a validation part; only train and validation are used.
        n_trials: Optuna trials.
        seed: seed of the sampler (and of models that take one, unless fixed).
        metric: "<name>@<k>" from the evaluation runner, maximised.
        relevance_threshold: validation ratings >= this are relevant; None = all.
        fixed_params: parameters held fixed (override the search space).
        timeout: stop starting new trials after this many seconds.

    Returns:
        (best_params, study): best_params include the fixed ones; the study's
        ``user_attrs`` hold ``fit_seconds`` per trial.
    """
    import optuna

    from movierec.models.registry import create, get_class

    if split.validation is None or split.validation.n_ratings == 0:
        raise ConfigError("Tuning needs a split with a validation part; make one with validation_k > 0.")
    cls = get_class(model_name)
    if not hasattr(cls, "suggest_params"):
        raise ConfigError(f"Model {model_name!r} has no search space (suggest_params) to tune.")
    fixed = dict(fixed_params or {})

    def params_of(trial) -> dict[str, Any]:
        params = {**cls.suggest_params(trial), **fixed}
        if "seed" in cls().get_params() and "seed" not in params:
            params["seed"] = seed
        return params

    def objective(trial) -> float:
        model = create(model_name, **params_of(trial))
        start = time.perf_counter()
        model.fit(split.train, split.validation)
        trial.set_user_attr("fit_seconds", time.perf_counter() - start)
        value = validation_score(model, split, metric, relevance_threshold)
        log.info("%s trial %d: %s = %.5f", model_name, trial.number, metric, value)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    best = params_of(optuna.trial.FixedTrial(study.best_trial.params))
    return best, study


__all__ = ["tune_ranking", "validation_score", "save_tuned", "load_tuned", "tuned_path"]
