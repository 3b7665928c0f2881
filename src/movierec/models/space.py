"""Declared hyperparameter search spaces.

A model declares its tunable hyperparameters as a class attribute, e.g.::

    search_space = {"dim": Categorical([16, 32, 64]), "reg": Float(0.02, 0.3, log=True)}

The tuner (`movierec.experiments.tune`) turns each entry into the matching Optuna
``trial.suggest_*`` call, in declaration order; models never import Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Float:
    """A real-valued hyperparameter in [low, high], sampled on a log scale when `log`."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"float in [{self.low:g}, {self.high:g}]{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Int:
    """A whole-number hyperparameter in [low, high]."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: Any, name: str) -> int:
        if self.log:
            return trial.suggest_int(name, self.low, self.high, log=True)
        return trial.suggest_int(name, self.low, self.high, step=self.step)

    def describe(self) -> str:
        return f"int in [{self.low}, {self.high}]{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Categorical:
    """A hyperparameter chosen from a fixed list of values."""

    choices: Sequence[Any]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


Distribution = Float | Int | Categorical
SearchSpace = dict[str, Distribution]


def suggest(space: SearchSpace, trial: Any) -> dict[str, Any]:
    """Sample every entry of `space` from an Optuna trial, in declaration order."""
    return {name: dist.suggest(trial, name) for name, dist in space.items()}


__all__ = ["Float", "Int", "Categorical", "Distribution", "SearchSpace", "suggest"]
