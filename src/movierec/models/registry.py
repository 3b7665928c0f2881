"""Model names used by the CLI and saved model folders -> classes (imported lazily), and
what each model declares (`model_info`, answered without importing built-in classes)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from movierec.errors import ConfigError

if TYPE_CHECKING:  # the classes (numpy, pandas ...) load when a model is asked for, not with the names
    from movierec.models.base import Recommender
    from movierec.models.metadata import ModelInfo

# name -> "module:Class"; imported lazily so the CLI starts fast.
_MODELS: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register a model class under a CLI name (target is 'module.path:ClassName')."""
    _MODELS[name] = target


def available() -> list[str]:
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    """What model `name` declares (kind, capabilities, parameters, search space).

    Built-in models are answered from `movierec.models.metadata` without importing their
    classes (torch, scikit-learn ...); a model registered at run time, or a built-in name
    registered to another class, is read from its class.
    """
    from movierec.models.metadata import BUILT_IN, class_info

    if name not in _MODELS:
        raise ConfigError(f"Unknown model {name!r}; choose one of: {', '.join(available())}.")
    known = BUILT_IN.get(name)
    if known is not None and known.target == _MODELS[name]:
        return known
    return class_info(name, get_class(name))


def get_class(name: str) -> type[Recommender]:
    """The class registered as `name`, or a ConfigError listing the valid names."""
    if name not in _MODELS:
        raise ConfigError(f"Unknown model {name!r}; choose one of: {', '.join(available())}.")
    module, cls = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def class_path(model: Recommender) -> str:
    return f"{type(model).__module__}:{type(model).__name__}"


def class_from_path(path: str) -> type[Recommender]:
    module, cls = path.split(":")
    if not module.startswith("movierec."):
        raise ConfigError(f"Refusing to load model class from outside movierec: {path}.")
    return getattr(importlib.import_module(module), cls)


def create(name: str, **params) -> Recommender:
    """Instantiate a registered model with hyperparameters."""
    cls = get_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"Bad parameters for model {name!r}: {exc}.") from None
