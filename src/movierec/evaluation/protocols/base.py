"""The `Protocol` base class and the registry of protocols by name.

A protocol is one object that knows everything the pipeline asks of an evaluation
protocol: how to split a Dataset (`splits`), the folder of its tuned configurations
(`config_key`), its name in words for titles and reports (`label`), the split a tuner
searches on (`tuning_split`), the movies its rankings may hold (`candidates`) and its
help text. `register_protocol` adds a class under its `name`; `get_protocol(name)` is how
every other module finds it, so adding a protocol is one class plus its registration.

This module (like every module of the package) imports numpy and the data layer only
inside the methods that need them, so the CLI can list the protocols in its help without
loading them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from movierec.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from movierec.data.dataset import Dataset
    from movierec.data.split import Split

#: the parts a protocol names candidates for
PARTS = ("test", "validation")


class Protocol:
    """An evaluation protocol: split, config key, label, tuning split, candidates, help.

    Subclasses set `name` and `help` and implement `split` (one split from a Dataset),
    or override `build` (several splits, or their own treatment of unseen users) or
    `splits` (input other than a Dataset, such as explicit files). Register them with
    `register_protocol`. Instances hold no state: one instance serves every caller.

    Attributes:
        name: the registry name, e.g. "leave-last" (what ``split.info["protocol"]`` holds).
        help: one line for the command line's ``--protocol`` help: the name, what is
            held out, what ``holdout`` means and, where it is not a share carved from
            the training part, what tuning validates on.
        validation_in_time: `tuning_split` carves the latest share of the training part
            (True) instead of a seeded random share.
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    validation_in_time: ClassVar[bool] = False

    # -- splits --------------------------------------------------------------------------
    def splits(self, ds: Dataset | None, holdout: float | None = None, seed: int = 42, *,
               validation: bool = True, drop_unseen_test: bool = True,
               files: tuple[str | Path, str | Path] | None = None) -> list[Split]:
        """Leak-free train/(validation)/test splits of `ds` (see `build_splits`).

        Raises:
            ConfigError: no dataset, files given to a protocol that splits a dataset, or
                options that do not fit the protocol.
        """
        if files is not None:
            raise ConfigError(f"The {self.name} protocol splits a dataset; explicit training and test files "
                              f"go with the files protocol.")
        if ds is None:
            raise ConfigError(f"The {self.name} protocol needs a dataset to split.")
        return self.build(ds, holdout, seed, validation=validation, drop_unseen_test=drop_unseen_test)

    def build(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool,
              drop_unseen_test: bool) -> list[Split]:
        """The splits of a Dataset: by default the one `split`, with validation/test users
        and movies unseen in train dropped (when `drop_unseen_test`, counted in
        ``info["dropped"]``) and ``info["holdout"]`` recorded."""
        from movierec.data.split import drop_unseen

        split = self.split(ds, holdout, seed, validation=validation)
        if drop_unseen_test:
            split = drop_unseen(split)
        split.info.setdefault("holdout", holdout)
        return [split]

    def split(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool) -> Split:
        """One train/(validation)/test split of `ds`, before unseen users and movies are
        dropped; ``info["protocol"]`` must be `name`. Protocols that override `build` or
        `splits` need not implement it."""
        raise NotImplementedError(f"The {self.name} protocol implements neither split nor build.")

    # -- what the pipeline asks of a protocol ---------------------------------------------
    def config_key(self, holdout: float | None = None) -> str:
        """The folder of its tuned configurations under ``<root>/<dataset>/`` (default: the name)."""
        return self.name

    def label(self, summary: Mapping[str, Any] | None = None) -> str:
        """The protocol in words for titles, reports and the command line, with its test
        amount when `summary` (a split's ``info`` or `split_summary`) states it:
        "leave-last (last item per user)", "temporal (test 10%)". Default: the name."""
        return self.name

    def tuning_split(self, ds: Dataset, holdout: float | None = None, seed: int = 42,
                     validation_fraction: float = 0.1) -> Split:
        """The split a tuner searches on: validation data carved from training data only.

        Default: the rating-evaluation split (no validation part, unseen test users kept;
        the first split where there are several), whose training part is cut into a fit
        part and a validation share (`validation_fraction`; the latest share when
        `validation_in_time`, else seeded random). ``split.test`` is never read by a tuner.

        Raises:
            ConfigError: a validation share outside (0, 0.5), or options that do not fit.
        """
        from movierec.data.split import carve_validation

        if not 0 < validation_fraction < 0.5:
            raise ConfigError(f"The validation share must be in (0, 0.5), got {validation_fraction}.")
        split = self.splits(ds, holdout, seed, validation=False, drop_unseen_test=False)[0]
        fit_part, validation = carve_validation(split.train, validation_fraction, seed,
                                                temporal=self.validation_in_time)
        info = {**split.info, "validation_fraction": validation_fraction}
        return replace(split, train=fit_part, validation=validation, info=info)

    def own_validation_split(self, ds: Dataset, holdout: float | None = None, seed: int = 42) -> Split:
        """The split `compare` makes, for protocols that tune on its validation part.

        Raises:
            ConfigError: the split has no validation interactions.
        """
        split = self.splits(ds, holdout, seed)[0]
        if split.validation is None or split.validation.n_ratings == 0:
            raise ConfigError(f"The {self.name} split of {ds.name} has no validation part to tune on.")
        return split

    def candidates(self, split: Split, part: str = "test") -> np.ndarray | None:
        """The movies a ranking of `part` ("test" or "validation") may hold: a boolean mask
        over movie indices, shape (n_items,), shared by every user; None = all movies.

        Raises:
            ConfigError: an unknown part.
        """
        check_part(part)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_part(part: str) -> None:
    """Refuse a part other than "test" or "validation"."""
    if part not in PARTS:
        raise ConfigError(f"The part is 'test' or 'validation', got {part!r}.")


def holdout_share(protocol: str, holdout: float | None, default: float, upper: float) -> float:
    """A test share in (0, upper): `holdout`, or `default` when None.

    Raises:
        ConfigError: a share outside (0, upper).
    """
    frac = default if holdout is None else float(holdout)
    if not 0 < frac < upper:
        raise ConfigError(f"The holdout of the {protocol} protocol is the test share in (0, {upper:g}), "
                          f"got {holdout!r}.")
    return frac


def share_label(name: str, summary: Mapping[str, Any], share: float | None) -> str:
    """"<name> (test 10%)" for a share in (0, 1), else the name alone. `share` is the
    summary's "holdout", or the split's own test share when no holdout was given."""
    holdout = summary.get("holdout")
    h = float(holdout) if holdout is not None else share
    return f"{name} (test {h:.0%})" if h is not None and 0 < h < 1 else name


# --------------------------------------------------------------------------------------
# the registry

#: name -> protocol instance, in registration order
_REGISTRY: dict[str, Protocol] = {}

P = TypeVar("P", bound=type)


def register_protocol(cls: P) -> P:
    """Register a `Protocol` subclass under its `name` (usable as a class decorator).

    Registering the same class again is a no-op.

    Raises:
        TypeError: `cls` is not a Protocol subclass or has no name.
        ConfigError: another class is registered under that name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Protocol)):
        raise TypeError(f"register_protocol takes a Protocol subclass, got {cls!r}.")
    name = cls.name
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a non-empty `name` to be registered.")
    known = _REGISTRY.get(name)
    if known is not None and type(known) is not cls:
        raise ConfigError(f"A protocol named {name!r} is already registered ({type(known).__qualname__}); "
                          f"give yours another name.")
    if known is None:
        _REGISTRY[name] = cls()
    return cls


def unregister_protocol(name: str) -> None:
    """Remove a registered protocol (a plug-in's, or a test's); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def available_protocols() -> tuple[str, ...]:
    """Names of the registered protocols, in registration order."""
    return tuple(_REGISTRY)


def get_protocol(name: str) -> Protocol:
    """The registered protocol called `name`.

    Raises:
        ConfigError: no protocol has that name (the sentence lists the known ones).
    """
    protocol = _REGISTRY.get(name) if isinstance(name, str) else None
    if protocol is None:
        raise ConfigError(f"Unknown protocol {name!r}; choose one of: {', '.join(available_protocols())}.")
    return protocol


def protocol_of(split: Split) -> Protocol | None:
    """The registered protocol that made `split` (from ``split.info["protocol"]``), or None
    for a split made otherwise (e.g. `kfold_splits`)."""
    name = split.info.get("protocol")
    return _REGISTRY.get(name) if isinstance(name, str) else None


def protocol_label(name: str | None, summary: Mapping[str, Any] | None = None) -> str | None:
    """The protocol called `name` in words (its `label` of `summary`); an unregistered
    name as it is, None as None."""
    if not name:
        return None
    protocol = _REGISTRY.get(name)
    return protocol.label(summary or {}) if protocol is not None else name


__all__ = [
    "PARTS",
    "Protocol",
    "available_protocols",
    "check_part",
    "get_protocol",
    "holdout_share",
    "protocol_label",
    "protocol_of",
    "register_protocol",
    "share_label",
    "unregister_protocol",
]
