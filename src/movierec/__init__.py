"""movierec: build, evaluate and serve movie recommenders on MovieLens.

The curated public API, loaded lazily so that ``import movierec`` stays light::

    import movierec as mr

    ds = mr.load_movielens("ml-100k")                               # load
    split = mr.leave_last_k_split(ds, k=1)                          # split
    model = mr.create("ease").fit(split.train_full())               # fit
    print(mr.evaluate_ranking(model, split.train_full(), split.test).summary["ndcg@10"])  # evaluate
    print(model.recommend([1], k=5).to_frame())                     # recommend
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data
    "load_movielens": "movierec.data",
    "load_ratings": "movierec.data",
    "Dataset": "movierec.data",
    "random_split": "movierec.data.split",
    "temporal_split": "movierec.data.split",
    "leave_last_k_split": "movierec.data.split",
    # models
    "create": "movierec.models",
    "available": "movierec.models",
    # evaluation
    "evaluate_ranking": "movierec.evaluation.runner",
    # pipeline
    "compare": "movierec.experiments",
    "CompareSpec": "movierec.experiments",
    "tune": "movierec.experiments",
    "evaluate_ratings": "movierec.experiments",
    "fit_model": "movierec.experiments",
    "TunedConfig": "movierec.experiments",
    # artifacts
    "train": "movierec.artifacts.train",
    "load_bundle": "movierec.artifacts",
    "save_bundle": "movierec.artifacts",
    "Bundle": "movierec.artifacts",
    "ModelRegistry": "movierec.artifacts",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'movierec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
