"""Model names used by the CLI and saved model folders -> classes."""

from __future__ import annotations

import importlib

from movierec.errors import ConfigError
from movierec.models.base import Recommender

# name -> "module:Class"; imported lazily so the CLI starts fast.
_MODELS: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register a model class under a CLI name (target is 'module.path:ClassName')."""
    _MODELS[name] = target


def available() -> list[str]:
    return sorted(_MODELS)


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
