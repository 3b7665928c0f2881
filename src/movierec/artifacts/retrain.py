"""`retrain(...)`: the next version of a registry model, from its data plus people's feedback.

The current version's bundle records where its data came from (manifest "data", see
`movierec.data.source`) and, when it was itself retrained, which profiles it learned
(manifest "feedback"). `retrain` reads that data again (refusing data that changed),
adds every rating of the feedback database (each profile a user), compares the current
and the new recipe on one held-out slice (`movierec.experiments.retrain`), fits the new
version on everything, stores it in the registry and makes it current only when the rule
allows (`always`, `if-better`: not worse on the slice, or `never`). The rule, the decision
and the figures are stored in the new version's manifest under "retrain". A running
`movierec serve` notices the moved pointer and serves the new version without a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from movierec.artifacts.bundle import Bundle, load_bundle
from movierec.artifacts.registry import ModelRegistry
from movierec.errors import ConfigError

#: the promotion rules of `retrain`
RULES = ("always", "if-better", "never")
#: the feedback database's file name in a registry folder (where `movierec serve` keeps it)
FEEDBACK_FILE = "feedback.sqlite3"


@dataclass
class RetrainResult:
    """What `retrain` did.

    Attributes:
        name: the registry name.
        parent: the version that was current before.
        version: the new version.
        promoted: whether the new version is now current.
        rule: the promotion rule applied.
        current, new: the two recipes' figures on the held-out slice.
        slice: how many held-out ratings (in all, from feedback, from the base data).
        feedback: ratings and profiles used, ratings ignored (unknown movies), the database.
        reason: one sentence on the decision.
    """

    name: str
    parent: str
    version: str
    promoted: bool
    rule: str
    current: dict[str, float] = field(default_factory=dict)
    new: dict[str, float] = field(default_factory=dict)
    slice: dict[str, int] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "parent": self.parent, "version": self.version, "promoted": self.promoted,
                "rule": self.rule, "reason": self.reason, "metrics": {"current": _finite(self.current),
                                                                     "new": _finite(self.new)},
                "slice": self.slice, "feedback": self.feedback}


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ConfigError(f"--promote takes one of {', '.join(RULES)}; got {rule!r}.")
    return rule


def registry_name(registry: ModelRegistry, name: str | None) -> str:
    """`name`, or the registry's only name; several names and none given is refused."""
    name = registry.resolve(name, "name one with --model")
    names = registry.names()
    if name not in names:
        raise ConfigError(f"The registry {registry.root} has no model {name!r}; it has {', '.join(names)}.")
    return name


def _read_feedback(path: Path, bundle: Bundle) -> list[tuple[str, Any, float, int]]:
    """Every rating of the feedback database, checked to be on the model's scale and IDs."""
    from movierec.data.feedback import FeedbackStore

    if not path.is_file():
        raise ConfigError(f"No feedback database at {path}; people's ratings are stored there by `movierec serve` "
                          f"(or give --feedback-db).")
    store = FeedbackStore(path)
    try:
        meta = store.meta()
        rows = store.all_ratings()
    finally:
        store.close()
    if not rows:
        raise ConfigError(f"The feedback database {path} holds no ratings yet; there is nothing to retrain on.")
    scale = bundle.model.rating_scale_
    recorded = meta.get("rating_scale")
    if recorded and scale and [float(v) for v in recorded] != [float(v) for v in scale]:
        raise ConfigError(f"The feedback database {path} holds ratings on the scale [{recorded[0]:g}, "
                          f"{recorded[1]:g}]; this model rates on [{scale[0]:g}, {scale[1]:g}]: it belongs to "
                          f"another model.")
    kind = meta.get("id_kind")
    model_kind = "int" if np.asarray(bundle.model.items_.raw_ids).dtype.kind in "iu" else "str"
    if kind and kind != model_kind:
        raise ConfigError(f"The feedback database {path} holds {'whole-number' if kind == 'int' else 'text'} movie "
                          f"IDs; this model's are {'whole numbers' if model_kind == 'int' else 'text'}: it belongs "
                          f"to another model.")
    return rows


def retrain(root: str | Path, name: str | None = None, *, feedback_db: str | Path | None = None,
            promote: str = "if-better", seed: int = 42, progress: Callable[[str], None] | None = None,
            finish: Callable[[Bundle, Bundle], None] | None = None) -> RetrainResult:
    """Train the next version of `name` from its recorded data plus the feedback database.

    Args:
        root: the registry folder.
        name: the registry name (None: the registry's only one).
        feedback_db: the feedback SQLite file (default: `<root>/feedback.sqlite3`).
        promote: "always", "if-better" (default: when not worse on the slice) or "never".
        seed: seeds the slice and every fit.
        progress: called with a line before each slow step.
        finish: called with (current bundle, new bundle) before the new one is stored,
            e.g. to rebuild a retrieval index the current one has.

    Raises:
        ConfigError: an unknown name or rule, no current version, a version that records
            no data, no or an empty feedback database, one of another model (scale, IDs),
            a rating off the scale.
        DatasetError: base data that is gone or changed since the current version.
    """
    from movierec.data.source import describe_source, reload
    from movierec.experiments.retrain import PRIMARY, compare_recipes, feedback_rows, profile_users, with_feedback
    from movierec.experiments.train import fit_model

    check_rule(promote)
    registry = ModelRegistry(root)
    name = registry_name(registry, name)
    current = registry.current(name)
    if current is None:
        raise ConfigError(f"{name!r} has no current version to retrain; promote one first.")
    since = f"version {current.version} of {name!r}"
    bundle = load_bundle(current.path)
    source = bundle.manifest.get("data")
    if not source:
        raise ConfigError(f"{since[0].upper()}{since[1:]} does not record the data it learned from (it was trained "
                          f"from data built in Python, a split, or by an older movierec); train it again with "
                          f"`movierec train --dataset NAME` or `--data FILE`.")
    db = Path(feedback_db) if feedback_db is not None else Path(root) / FEEDBACK_FILE
    rows = _read_feedback(db, bundle)
    if progress is not None:
        progress(f"reading {describe_source(source)} again")
    base = reload(source, since=since)
    if base.items != bundle.model.items_:
        raise ConfigError(f"The data {describe_source(source)} no longer has the movies {since} learned from; "
                          f"train anew with `movierec train`.")
    feedback = feedback_rows(rows, base, where=f"The feedback database {db}", scale=bundle.model.rating_scale_)
    previous = dict(bundle.manifest.get("feedback") or {})
    users = profile_users(base, feedback.profiles, previous.get("profiles"))
    data = with_feedback(base, feedback, users)
    n_base = base.n_ratings
    # the ratings the current version learned from: the base data and the feedback of its own retrain
    old_profiles, until = set((previous.get("profiles") or {}).keys()), previous.get("until")
    current_rows = np.ones(len(data.user_idx), dtype=bool)
    if len(feedback):
        learned = np.asarray([p in old_profiles for p in feedback.profile.tolist()], dtype=bool)
        if until is not None:
            learned &= feedback.timestamp <= int(until)
        current_rows[n_base:] = learned
    model_name = bundle.manifest.get("model_name") or bundle.model.name
    params = {k: v for k, v in bundle.params.items() if k != "progress"}
    comparison = compare_recipes(model_name, params, data, n_base, current_rows, seed=seed, progress=progress)
    if promote == "always":
        promoted, reason = True, "the rule is always"
    elif promote == "never":
        promoted, reason = False, "the rule is never"
    elif comparison.not_worse():
        promoted = True
        reason = (f"not worse on the held-out slice: {PRIMARY} {_fmt(comparison.new.get(PRIMARY))} (new) vs "
                  f"{_fmt(comparison.current.get(PRIMARY))} (current)")
    else:
        promoted = False
        reason = (f"worse on the held-out slice: {PRIMARY} {_fmt(comparison.new.get(PRIMARY))} (new) vs "
                  f"{_fmt(comparison.current.get(PRIMARY))} (current)")
    if progress is not None:
        progress(f"fitting the new version on all {data.n_ratings:,} ratings")
    fitted = fit_model(model_name, data, params=params, seed=seed)
    new = Bundle.from_model(fitted.model, data, catalog=bundle.catalog, metrics=fitted.metrics,
                            info={**dict(bundle.manifest.get("info") or {}), "retrained_from": current.version})
    new.manifest["data"] = source  # the next retrain reads the same base data again
    fb_doc = {"db": str(db), "profiles": users, "until": int(feedback.timestamp.max()), "n_ratings": len(feedback),
              "ignored": feedback.ignored}
    new.manifest["feedback"] = fb_doc
    new.manifest["retrain"] = {"parent": current.version, "rule": promote, "promoted": promoted, "reason": reason,
                               "primary": PRIMARY, "seed": seed, "slice": comparison.slice,
                               "current": _finite(comparison.current), "new": _finite(comparison.new)}
    if finish is not None:
        finish(bundle, new)
    version = registry.add(new, name, promote=False)
    if promoted:
        registry.promote(name, version.version)
    return RetrainResult(name=name, parent=current.version, version=version.version, promoted=promoted,
                         rule=promote, current=comparison.current, new=comparison.new, slice=comparison.slice,
                         feedback={"db": str(db), "ratings": len(feedback), "profiles": len(users),
                                   "ignored": feedback.ignored}, reason=reason)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


__all__ = ["FEEDBACK_FILE", "RULES", "RetrainResult", "check_rule", "registry_name", "retrain"]
