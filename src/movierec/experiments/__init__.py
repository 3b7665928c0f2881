"""The pipeline: everything the CLI, the benchmarks, the docs and a service run.

* `compare(CompareSpec) -> Comparison`: several models on one leak-free split;
* `tune(model, split, metric, trials) -> TunedConfig`: one seeded Optuna loop on
  validation data only, for rating and ranking models;
* `evaluate_ratings(model, splits) -> RatingEvaluation`: RMSE/MAE per fold;
* `fit_model(model, dataset) -> TrainResult` (bundled by `movierec.artifacts.train`);
* tuned configurations: `TunedConfig`, `find_tuned`, `protocol_key`, `config_root`.

This layer imports the evaluation, model and data layers only (never the CLI or
artifacts).
"""

from movierec.experiments.compare import CompareSpec, compare
from movierec.experiments.configs import TunedConfig, config_root, find_tuned, protocol_key, tuned_path
from movierec.experiments.data import load_data
from movierec.experiments.evaluate import RatingEvaluation, evaluate_ratings, rating_splits
from movierec.experiments.models import build_model, check_params
from movierec.experiments.train import TrainResult, fit_model
from movierec.experiments.tune import tune, tuning_split

__all__ = [
    "CompareSpec",
    "RatingEvaluation",
    "TrainResult",
    "TunedConfig",
    "build_model",
    "check_params",
    "compare",
    "config_root",
    "evaluate_ratings",
    "find_tuned",
    "fit_model",
    "load_data",
    "protocol_key",
    "rating_splits",
    "tune",
    "tuned_path",
    "tuning_split",
]
