"""Evaluation protocols: which split, which relevance threshold, which candidates.

`build_splits` (the one split dispatcher) turns protocol names into leak-free splits:

* ``temporal`` (default for comparisons): one global cut in time, the earliest 80% of
  interactions train, the next 10% validate, the latest 10% test. No model ever sees
  an interaction from after the test period starts (leave-one-out per user leaks the
  future across users: user A's "last" rating may predate user B's training ratings).
* ``leave-last``: per user, the latest interaction(s) test and the ones just before
  validate (``holdout=1`` for the last item, ``holdout=0.2`` for each user's last 20%).
* ``random``: a seeded uniform holdout of interactions (test share ``holdout``,
  default 0.1, and the same share for validation).
* ``ml100k-folds``: the five canonical ML-100K folds (u1..u5); no validation part.
* ``files``: explicit train and test files (``files_protocol``); nothing is split.
* ``cold-movies``: a seeded share of the movies (``holdout``, default 0.1) held out of
  training entirely; every test user ranks only those cold movies
  (`movierec.evaluation.cold_movies`).

Rating evaluation asks for no validation part (`validation=False`) and keeps unseen test
users and movies (`drop_unseen_test=False`): rating models answer them from biases.

Users and items of the test (and validation) part that never occur in train are
dropped (`movierec.data.split.drop_unseen`): a personalised model has no history to rank
for such a user, and no model can have learned such an item. How many were dropped is
recorded in ``split.info["dropped"]``.

Sampled-negative evaluation (rank each test item among N random unrated items instead
of the whole catalog) is available on request only, with fixed seeds and cached
negatives: it is known to reorder models relative to full ranking.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.data.split import (
    Split,
    drop_unseen,
    files_split,
    leave_last_k_split,
    ml100k_folds,
    random_split,
    temporal_split,
)
from movierec.errors import ConfigError, SplitError

PROTOCOLS = ("temporal", "leave-last", "random", "ml100k-folds", "files", "cold-movies")

SAMPLED_WARNING = (
    "Sampled-negative evaluation ranks each user's test items among a few random items "
    "instead of the whole catalog; its numbers are inflated and can reorder models "
    "compared with full ranking (Krichene & Rendle, 2020). Use it only to compare with "
    "papers that report it."
)


class SampledEvaluationWarning(UserWarning):
    """Issued whenever sampled-negative candidates are built."""


def _share(protocol: str, holdout: float | None, default: float, upper: float) -> float:
    frac = default if holdout is None else float(holdout)
    if not 0 < frac < upper:
        raise ConfigError(f"The holdout of the {protocol} protocol is the test share in (0, {upper:g}), got {holdout!r}.")
    return frac


def build_splits(
    ds: Dataset | None,
    protocol: str = "temporal",
    holdout: float | None = None,
    seed: int = 42,
    *,
    validation: bool = True,
    drop_unseen_test: bool = True,
    files: tuple[str | Path, str | Path] | None = None,
) -> list[Split]:
    """The one split dispatcher: train/(validation)/test splits by protocol name.

    Args:
        ds: the full Dataset (None for the ``files`` protocol).
        protocol: one of PROTOCOLS:
            "temporal" (global cut in time), "leave-last" (per user), "random" (seeded
            uniform), "ml100k-folds" (the five canonical ML-100K folds u1..u5, needs the
            ml-100k Dataset), "files" (explicit train and test files, see `files`).
        holdout: temporal/random: the test share (default 0.1 with a validation part of
            the same share, 0.2 without one); leave-last: a whole number of last items
            (default 1) or a fraction of each user's history.
        seed: seed of the random protocol (the others are deterministic).
        validation: carve a validation part (same size as the test part, just before it
            in time for temporal/leave-last). Rating evaluation passes False: the
            training part then keeps those interactions.
        drop_unseen_test: drop validation/test interactions of users or items absent
            from train (counts in ``info["dropped"]``).
        files: (train path, test path) for the ``files`` protocol.

    Returns:
        A list of Splits: five for ml100k-folds, one otherwise.

    Raises:
        ConfigError: unknown protocol, bad holdout, or data that does not fit the protocol.
    """
    if protocol == "files" or files is not None:
        if files is None:
            raise ConfigError("The files protocol needs a training file and a test file.")
        return [files_protocol(files[0], files[1], drop_unseen_test=drop_unseen_test)]
    if protocol not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}.")
    if ds is None:
        raise ConfigError(f"The {protocol} protocol needs a dataset to split.")
    if protocol == "cold-movies":
        from movierec.evaluation.cold_movies import DEFAULT_FRACTION, cold_movie_split

        frac = DEFAULT_FRACTION if holdout is None else float(holdout)
        # cold movies are unseen in train by design: only users without history are dropped
        return [cold_movie_split(ds, frac, seed=seed, validation=validation, drop_unseen_users=drop_unseen_test)]
    if protocol == "ml100k-folds":
        if ds.name != "ml-100k":
            raise ConfigError(f"The ml100k-folds protocol needs the ml-100k dataset, not {ds.name!r}; "
                              "use the random or temporal protocol for other data.")
        splits = list(ml100k_folds(ds))
        return [drop_unseen(s) for s in splits] if drop_unseen_test else splits
    if protocol == "temporal":
        if validation:
            frac = _share(protocol, holdout, 0.1, 0.5)
            split = temporal_split(ds, train=1 - 2 * frac, validation=frac, test=frac)
        else:
            frac = _share(protocol, holdout, 0.2, 1.0)
            split = temporal_split(ds, train=1 - frac, validation=0.0, test=frac)
    elif protocol == "leave-last":
        k: int | float = 1 if holdout is None else holdout
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        if isinstance(k, float) and not 0 < k < 1:
            raise ConfigError(f"The holdout of leave-last is a whole number of items or a fraction in (0, 1), got {holdout!r}.")
        try:
            split = leave_last_k_split(ds, k=k, validation_k=k if validation else 0)
        except SplitError as exc:
            raise ConfigError(str(exc)) from None
    else:  # random
        if validation:
            frac = _share(protocol, holdout, 0.1, 0.5)
            split = random_split(ds, test_fraction=frac, validation_fraction=frac, seed=seed)
        else:
            frac = _share(protocol, holdout, 0.2, 1.0)
            split = random_split(ds, test_fraction=frac, seed=seed)
    if drop_unseen_test:
        split = drop_unseen(split)
    split.info.setdefault("holdout", holdout)
    return [split]


def build_split(ds: Dataset | None, protocol: str = "temporal", holdout: float | None = None, seed: int = 42,
                drop_unseen_test: bool = True, validation: bool = True,
                files: tuple[str | Path, str | Path] | None = None) -> Split:
    """One train/validation/test split by protocol name (see `build_splits`; for
    ml100k-folds this is fold u1)."""
    return build_splits(ds, protocol, holdout, seed, validation=validation, drop_unseen_test=drop_unseen_test,
                        files=files)[0]


def files_protocol(train_path: str | Path, test_path: str | Path, drop_unseen_test: bool = True, **read_options) -> Split:
    """Explicit train and test files (no validation part); unseen test users/items are
    dropped and counted as in `build_split` (when `drop_unseen_test`)."""
    split = files_split(train_path, test_path, drop_unseen_test=False, **read_options)
    return drop_unseen(split) if drop_unseen_test else split


def split_summary(split: Split) -> dict:
    """JSON-ready description of a split: protocol, sizes, dropped counts, time cut."""
    out = {k: v for k, v in split.info.items()}
    for name, part in split.parts().items():
        out[f"n_{name}"] = int(part.n_ratings)
        out[f"n_{name}_users"] = int(len(part.active_users()))
    out["n_items"] = int(split.train.n_items)
    return out


def default_relevance_threshold(ds: Dataset) -> float | None:
    """The default "relevant" cut for explicit ratings: low + 0.75 * (high - low) of the
    rating scale, i.e. 4 on a 1-5 scale and 3.875 (so >= 4) on 0.5-5. None for implicit
    data (a single rating value), where every interaction is relevant."""
    scale = ds.rating_scale
    if scale is None or not np.isfinite(scale[0]) or scale[1] <= scale[0]:
        return None
    low, high = float(scale[0]), float(scale[1])
    return low + 0.75 * (high - low)


# --------------------------------------------------------------------------------------
# sampled negatives

_NEGATIVE_CACHE: dict[str, sp.csr_matrix] = {}


def _negatives_key(train: Dataset, test: Dataset, n_negatives: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(train.fingerprint().encode())
    h.update(test.fingerprint().encode())
    h.update(f"{n_negatives}:{seed}".encode())
    return h.hexdigest()[:24]


def sample_negatives(train: Dataset, test: Dataset, n_negatives: int = 100, seed: int = 0,
                     cache_dir: str | Path | None = None) -> sp.csr_matrix:
    """Per-user candidate sets for sampled-negative evaluation.

    Each test user's candidates are their test items plus `n_negatives` items drawn
    uniformly (seeded) among the items they have in neither train nor test. The result
    is cached in memory (and in `cache_dir` as .npz when given), keyed by the data
    fingerprints, `n_negatives` and `seed`, so every model sees the same candidates.

    Issues a `SampledEvaluationWarning` (see SAMPLED_WARNING).

    Returns:
        bool CSR matrix, shape (n_users, n_items): True = candidate for that user.
        Rows of users without test interactions are empty.
    """
    warnings.warn(SAMPLED_WARNING, SampledEvaluationWarning, stacklevel=2)
    if n_negatives < 1:
        raise ConfigError(f"n_negatives must be at least 1, got {n_negatives!r}.")
    key = _negatives_key(train, test, n_negatives, seed)
    if key in _NEGATIVE_CACHE:
        return _NEGATIVE_CACHE[key]
    path = Path(cache_dir) / f"negatives-{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        cand = sp.load_npz(path).tocsr().astype(bool)
        _NEGATIVE_CACHE[key] = cand
        return cand

    n_users, n_items = train.n_users, train.n_items
    rng = np.random.default_rng(seed)
    users = np.unique(test.user_idx)
    seen = (train.to_csr("ones") + test.to_csr("ones")).tocsr()
    seen.sum_duplicates()
    seen.sort_indices()
    row_of = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
    seen_keys = row_of * n_items + seen.indices.astype(np.int64)
    available = n_items - np.diff(seen.indptr)[users]
    want = np.minimum(n_negatives, available)
    chosen = [np.empty(0, np.int64)] * len(users)
    todo = np.arange(len(users))
    for _ in range(64):  # rejection sampling, vectorised over users
        if len(todo) == 0:
            break
        draw = rng.integers(0, n_items, size=(len(todo), 2 * n_negatives + 8))
        keys = users[todo, None].astype(np.int64) * n_items + draw
        pos = np.minimum(np.searchsorted(seen_keys, keys), max(len(seen_keys) - 1, 0))
        bad = seen_keys[pos] == keys if len(seen_keys) else np.zeros_like(keys, bool)
        still = []
        for row, t in enumerate(todo):
            got = np.concatenate([chosen[t], draw[row][~bad[row]]])
            _, first = np.unique(got, return_index=True)
            got = got[np.sort(first)][: want[t]]
            chosen[t] = got
            if len(got) < want[t]:
                still.append(t)
        todo = np.asarray(still, dtype=np.int64)
    for t in todo:  # very dense users: take the rest exactly
        free = np.setdiff1d(np.arange(n_items), seen[users[t]].indices)
        chosen[t] = rng.choice(free, size=want[t], replace=False)
    rows = np.concatenate([np.full(len(c), u, np.int64) for u, c in zip(users, chosen)] + [test.user_idx.astype(np.int64)])
    cols = np.concatenate(list(chosen) + [test.item_idx.astype(np.int64)])
    cand = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n_users, n_items))
    cand.sum_duplicates()
    cand.sort_indices()
    _NEGATIVE_CACHE[key] = cand
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        sp.save_npz(tmp, cand.astype(np.uint8), compressed=True)
        tmp.replace(path)
    return cand


__all__ = [
    "PROTOCOLS",
    "SAMPLED_WARNING",
    "SampledEvaluationWarning",
    "build_split",
    "build_splits",
    "files_protocol",
    "split_summary",
    "default_relevance_threshold",
    "sample_negatives",
]
