"""Creating models by name with checked hyperparameters (used by every pipeline step)."""

from __future__ import annotations

import inspect
from typing import Any

from movierec.errors import ConfigError
from movierec.models.base import Recommender


def model_class(name: str) -> type[Recommender]:
    """The registered class `name`, or a ConfigError naming the valid models (also when
    the model's module cannot be imported, e.g. a missing optional dependency)."""
    from movierec.models.registry import available, get_class

    try:
        return get_class(name)
    except ImportError as exc:
        raise ConfigError(f"Model {name!r} is registered but cannot be imported ({exc}); choose another of: "
                          f"{', '.join(available())}.") from None


def _type_ok(default: Any, value: Any) -> tuple[bool, str]:
    """(does `value` fit the type of `default`, a short name of that type)."""
    if isinstance(default, bool):
        return isinstance(value, bool), "true or false"
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool), "a whole number"
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if isinstance(default, str):
        return isinstance(value, str), "a string"
    return True, ""


def check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse, in one sentence, hyperparameters a model does not have or whose value does
    not fit the type of its default (int, float, bool or str defaults; None is always
    allowed and other defaults are not checked).

    Raises:
        ConfigError: an unknown name or a value of the wrong type.
    """
    from movierec.training.options import LEGACY_RUNTIME_KEYS

    defaults = model_class(name).default_params()
    for key, value in params.items():
        if key not in defaults and key in LEGACY_RUNTIME_KEYS:
            continue  # a runtime option saved by an older movierec: `build_model` drops it
        if key not in defaults:
            raise ConfigError(f"Model {name!r} has no hyperparameter {key!r}; valid: {', '.join(sorted(defaults))}.")
        default = defaults[key]
        if value is None or default is None or default is inspect.Parameter.empty:
            continue
        ok, kind = _type_ok(default, value)
        if not ok:
            raise ConfigError(f"Hyperparameter {key!r} of model {name!r} takes {kind}, got {value!r}.")


def build_model(name: str, params: dict[str, Any] | None = None, seed: int | None = None) -> Recommender:
    """An unfitted registered model with checked hyperparameters; `seed` is applied when
    the model takes one as a hyperparameter (e.g. ALS) and `params` does not set it.

    The torch models' runtime options (seed, device, threads, progress) are not
    hyperparameters: give them to `fit(..., runtime=...)`. Such keys in `params` (from
    an older tuned config or bundle) are dropped.
    """
    from movierec.models.registry import create
    from movierec.training.options import without_runtime_params

    cls = model_class(name)
    params = without_runtime_params(dict(params or {}), cls.default_params())
    check_params(name, params)
    if seed is not None and "seed" in cls.default_params() and "seed" not in params:
        params["seed"] = seed
    model = create(name, **params)
    model.check_params()  # ranges, before any data is read
    return model


__all__ = ["build_model", "check_params", "model_class"]
