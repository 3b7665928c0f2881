"""Leak-free splits. Every part shares the parent Dataset's IdMaps, so indices agree.

Each function returns a `Split`; no interaction is in two parts and none is lost
(except those dropped on request by `drop_unseen`, which are counted in `info`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import SplitError


@dataclass(eq=False)
class Split:
    """train / validation / test parts of one Dataset.

    Attributes:
        info: how the split was made and what was dropped (protocol, seed, counts).
    """

    train: Dataset
    test: Dataset
    validation: Dataset | None = None
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        val = f", validation={self.validation.n_ratings:,}" if self.validation is not None else ""
        return f"Split(train={self.train.n_ratings:,}{val}, test={self.test.n_ratings:,}, info={self.info})"

    def parts(self) -> dict[str, Dataset]:
        out = {"train": self.train}
        if self.validation is not None:
            out["validation"] = self.validation
        out["test"] = self.test
        return out

    def train_full(self) -> Dataset:
        """train + validation: what a model is refit on after tuning on validation."""
        if self.validation is None:
            return self.train
        return concat(self.train, self.validation, name=self.train.name)


def concat(a: Dataset, b: Dataset, name: str | None = None) -> Dataset:
    """Interactions of two parts of the same Dataset, in one Dataset."""
    if a.users is not b.users and a.users != b.users:
        raise SplitError("Cannot join parts of different datasets (their ID maps differ).")
    from dataclasses import replace

    return replace(
        a,
        name=name or a.name,
        user_idx=np.concatenate([a.user_idx, b.user_idx]),
        item_idx=np.concatenate([a.item_idx, b.item_idx]),
        rating=np.concatenate([a.rating, b.rating]),
        timestamp=np.concatenate([a.timestamp, b.timestamp]),
        _csr=None,
    )


def _check_fraction(name: str, value: float, allow_zero: bool = True) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        raise SplitError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1), got {value!r}.")


def earliest_in_time(timestamp: np.ndarray, m: int) -> np.ndarray:
    """Boolean mask of the `m` earliest rows in time, ties in row order: the first `m`
    rows of a stable sort by timestamp, found in O(n) (one selection, no sort), so a
    temporal cut of 25M ratings takes a fraction of a second.

    Args:
        timestamp: shape (n,).
        m: how many rows to pick; <= 0 picks none, >= n picks all.

    Returns:
        bool array, shape (n,).
    """
    n = len(timestamp)
    if m <= 0:
        return np.zeros(n, dtype=bool)
    if m >= n:
        return np.ones(n, dtype=bool)
    cut = np.partition(timestamp, m - 1)[m - 1]  # the m-th smallest timestamp
    mask = timestamp < cut
    ties = np.flatnonzero(timestamp == cut)
    mask[ties[: m - int(np.count_nonzero(mask))]] = True
    return mask


def _require_timestamps(ds: Dataset, what: str) -> None:
    if not ds.has_timestamps:
        raise SplitError(f"A {what} split needs timestamps, and {ds.name} has none.")


def drop_unseen(split: Split, users: bool = True, items: bool = True) -> Split:
    """Remove validation/test interactions whose user or item never occurs in train.

    The numbers dropped are recorded in `split.info["dropped"]`.
    """
    seen_u = split.train.user_counts() > 0
    seen_i = split.train.item_counts() > 0
    dropped = {}
    parts = {}
    for name in ("validation", "test"):
        part = getattr(split, name)
        if part is None:
            parts[name] = None
            continue
        keep = np.ones(part.n_ratings, dtype=bool)
        if users:
            bad_u = ~seen_u[part.user_idx]
            dropped[f"{name}_unseen_user_ratings"] = int(bad_u.sum())
            dropped[f"{name}_unseen_users"] = int(len(np.unique(part.user_idx[bad_u])))
            keep &= ~bad_u
        if items:
            bad_i = ~seen_i[part.item_idx]
            dropped[f"{name}_unseen_item_ratings"] = int((bad_i & keep).sum())
            dropped[f"{name}_unseen_items"] = int(len(np.unique(part.item_idx[bad_i])))
            keep &= ~bad_i
        parts[name] = part.subset(keep)
    info = dict(split.info)
    info["dropped"] = dropped
    return Split(train=split.train, test=parts["test"], validation=parts["validation"], info=info)


def _finish(ds: Dataset, labels: np.ndarray, info: dict, unseen: bool) -> Split:
    """labels: 0 train, 1 validation, 2 test per interaction."""
    val = ds.subset(labels == 1, name=f"{ds.name}:validation") if (labels == 1).any() else None
    split = Split(
        train=ds.subset(labels == 0, name=f"{ds.name}:train"),
        validation=val,
        test=ds.subset(labels == 2, name=f"{ds.name}:test"),
        info=info,
    )
    if split.train.n_ratings == 0 or split.test.n_ratings == 0:
        raise SplitError(f"The {info.get('protocol')} split of {ds.name} left train or test empty; use more data or other fractions.")
    return drop_unseen(split) if unseen else split


def random_split(ds: Dataset, test_fraction: float = 0.2, validation_fraction: float = 0.0,
                 seed: int = 42, drop_unseen_test: bool = False) -> Split:
    """Seeded uniform holdout of interactions."""
    _check_fraction("test_fraction", test_fraction, allow_zero=False)
    _check_fraction("validation_fraction", validation_fraction)
    if test_fraction + validation_fraction >= 1:
        raise SplitError("test_fraction + validation_fraction must be below 1.")
    rng = np.random.default_rng(seed)
    n = ds.n_ratings
    order = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * validation_fraction))
    labels = np.zeros(n, dtype=np.int8)
    labels[order[:n_test]] = 2
    labels[order[n_test : n_test + n_val]] = 1
    info = {"protocol": "random", "seed": seed, "test_fraction": test_fraction, "validation_fraction": validation_fraction}
    return _finish(ds, labels, info, drop_unseen_test)


def temporal_split(ds: Dataset, train: float = 0.8, validation: float = 0.1, test: float = 0.1,
                   drop_unseen_test: bool = False) -> Split:
    """Global temporal split: the earliest `train` share of interactions trains, the next
    `validation` share validates, the latest `test` share tests. Ties keep file order,
    so every training interaction is no later than any test interaction."""
    _require_timestamps(ds, "temporal")
    for name, frac in (("train", train), ("validation", validation), ("test", test)):
        if frac < 0 or frac > 1:
            raise SplitError(f"{name} fraction must be in [0, 1], got {frac!r}.")
    if abs(train + validation + test - 1) > 1e-9 or train == 0 or test == 0:
        raise SplitError(f"train, validation and test fractions must be positive (validation may be 0) and sum to 1, got {train}, {validation}, {test}.")
    n = ds.n_ratings
    n_train = int(round(n * train))
    n_val = int(round(n * validation))
    # the first n_train rows of a stable time order train, the next n_val validate
    labels = np.full(n, 2, dtype=np.int8)
    labels[earliest_in_time(ds.timestamp, n_train + n_val)] = 1
    labels[earliest_in_time(ds.timestamp, n_train)] = 0
    cut = {}
    if n_train < n:
        test_ts = ds.timestamp[labels == 2]
        cut["test_start"] = int(test_ts.min()) if len(test_ts) else None
    info = {"protocol": "temporal", "fractions": [train, validation, test], **cut}
    return _finish(ds, labels, info, drop_unseen_test)


def _user_positions(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order interactions by (user, time); return order, per-row position from the end
    of the user's history (0 = latest), and each row's history length."""
    order = np.lexsort((np.arange(ds.n_ratings), ds.timestamp, ds.user_idx))
    users_sorted = ds.user_idx[order]
    counts = np.bincount(users_sorted, minlength=ds.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos_in_user = np.arange(ds.n_ratings) - starts[users_sorted]
    length = counts[users_sorted]
    from_end = length - 1 - pos_in_user
    return order, from_end, length


def leave_last_k_split(ds: Dataset, k: int | float = 1, validation_k: int | float | None = None,
                       min_train: int = 1, drop_unseen_test: bool = False) -> Split:
    """Per-user temporal holdout: each user's latest interactions test, the ones before
    validate, the rest train.

    Args:
        k: a whole number (the last k interactions) or a fraction in (0, 1) (the last
            share of each user's history, rounded, at least 1).
        validation_k: the same for validation, taken just before the test part;
            defaults to `k`; 0 for none.
        min_train: users keep at least this many training interactions; users with too
            few interactions keep everything in train.
    """
    _require_timestamps(ds, "leave-last")

    def amount(value, lengths):
        if isinstance(value, float) and 0 < value < 1:
            return np.maximum(1, np.round(lengths * value).astype(np.int64))
        if (isinstance(value, (int, np.integer)) or float(value).is_integer()) and value >= 0:
            return np.full_like(lengths, int(value))
        raise SplitError(f"holdout must be a whole number >= 0 or a fraction in (0, 1), got {value!r}.")

    if k == 0:
        raise SplitError("k must be at least 1 (or a fraction in (0, 1)).")
    validation_k = k if validation_k is None else validation_k
    order, from_end, length = _user_positions(ds)
    n_test = amount(k, length)
    n_val = amount(validation_k, length)
    # users too short for train + validation + test keep validation smaller, then test
    room = np.maximum(length - min_train, 0)
    n_test = np.minimum(n_test, room)
    n_val = np.minimum(n_val, room - n_test)
    labels_sorted = np.where(from_end < n_test, 2, np.where(from_end < n_test + n_val, 1, 0)).astype(np.int8)
    labels = np.empty(ds.n_ratings, dtype=np.int8)
    labels[order] = labels_sorted
    info = {"protocol": "leave-last", "k": k, "validation_k": validation_k, "min_train": min_train}
    return _finish(ds, labels, info, drop_unseen_test)


def carve_validation(train: Dataset, fraction: float, seed: int = 42, temporal: bool = False) -> tuple[Dataset, Dataset]:
    """(fit part, validation part) of a training Dataset, for tuning or early stopping.

    The validation part is a seeded random share of `train` (the first
    round(fraction * n), at least 1, of a seeded permutation), or with `temporal` and
    timestamps its latest share. Only training data is touched, so no test rating can
    leak into a choice of hyperparameters or epochs.
    """
    _check_fraction("fraction", fraction, allow_zero=False)
    n = train.n_ratings
    n_val = max(1, int(round(n * fraction)))
    if temporal and train.has_timestamps:
        hold = ~earliest_in_time(train.timestamp, n - n_val)  # the latest n_val in a stable time order
    else:
        hold = np.zeros(n, dtype=bool)
        hold[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return train.subset(~hold, name=f"{train.name}:fit"), train.subset(hold, name=f"{train.name}:validation")


def kfold_splits(ds: Dataset, n_folds: int = 5, seed: int = 42) -> Iterator[Split]:
    """Seeded k-fold over interactions: each interaction is in exactly one test fold."""
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise SplitError(f"n_folds must be at least 2, got {n_folds!r}.")
    if n_folds > ds.n_ratings:
        raise SplitError(f"n_folds ({n_folds}) exceeds the number of ratings ({ds.n_ratings}).")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(ds.n_ratings, dtype=np.int64)
    fold_of[rng.permutation(ds.n_ratings)] = np.arange(ds.n_ratings) % n_folds
    for f in range(n_folds):
        labels = np.where(fold_of == f, 2, 0).astype(np.int8)
        yield _finish(ds, labels, {"protocol": "kfold", "fold": f, "n_folds": n_folds, "seed": seed}, False)


def ml100k_fold(ds: Dataset, fold: str, folder: Path | None = None) -> Split:
    """One of the canonical ML-100K folds (u1..u5, ua, ub), read from the archive.

    Args:
        ds: the full ML-100K Dataset (its IdMaps are used for both parts).
        fold: "u1".."u5", "ua" or "ub".
        folder: the extracted ml-100k folder; defaults to the cache.
    """
    from movierec.data.fetch import fetch
    from movierec.data.movielens import ML100K_FOLDS, get_spec, read_ratings

    if fold not in ML100K_FOLDS:
        raise SplitError(f"Unknown ML-100K fold {fold!r}; choose one of {', '.join(ML100K_FOLDS)}.")
    spec = get_spec("ml-100k")
    folder = Path(folder) if folder else fetch("ml-100k")
    parts = []
    for suffix in ("base", "test"):
        table = read_ratings(spec, folder / f"{fold}.{suffix}")
        u = ds.users.lookup(table.user)
        i = ds.items.lookup(table.item)
        parts.append((u, i, table))
    return _split_from_tables(ds, parts, {"protocol": "ml100k-folds", "fold": fold})


def _split_from_tables(ds: Dataset, parts, info: dict) -> Split:
    from dataclasses import replace

    out = []
    for name, (u, i, table) in zip(("train", "test"), parts):
        has_ts = table.timestamp is not None
        out.append(
            replace(
                ds,
                name=f"{ds.name}:{info.get('fold', name)}:{name}",
                user_idx=u.astype(np.int32),
                item_idx=i.astype(np.int32),
                rating=np.asarray(table.rating, dtype=np.float32),
                timestamp=(table.timestamp.astype(np.int64) if has_ts else np.zeros(len(u), np.int64)),
                has_timestamps=ds.has_timestamps and has_ts,
                _csr=None,
            )
        )
    return Split(train=out[0], test=out[1], info=info)


def ml100k_folds(ds: Dataset, folds=("u1", "u2", "u3", "u4", "u5"), folder: Path | None = None) -> Iterator[Split]:
    """The five canonical ML-100K cross-validation folds, in order."""
    for fold in folds:
        yield ml100k_fold(ds, fold, folder)


def files_split(train_path: str | Path, test_path: str | Path, drop_unseen_test: bool = False, **options) -> Split:
    """Explicit train and test files of the same format; IDs are mapped over both so
    the parts share IdMaps (a test-only user is known to the map but has no training data)."""
    from movierec.data.movielens import build_dataset
    from movierec.data.readers import RatingsTable, read_user_ratings

    train_t = read_user_ratings(train_path, **options)
    test_t = read_user_ratings(test_path, **options)
    if (train_t.timestamp is None) != (test_t.timestamp is None):
        raise SplitError("The train and test files must both have timestamps or both lack them.")
    n_train = len(train_t.user)

    def cat(a, b):
        if a.dtype != b.dtype and (a.dtype == object or b.dtype == object):
            return np.concatenate([a.astype(str).astype(object), b.astype(str).astype(object)])
        return np.concatenate([a, b])

    table = RatingsTable(
        user=cat(train_t.user, test_t.user),
        item=cat(train_t.item, test_t.item),
        rating=np.concatenate([train_t.rating, test_t.rating]),
        timestamp=None if train_t.timestamp is None else np.concatenate([train_t.timestamp, test_t.timestamp]),
    )
    full = build_dataset(Path(train_path).stem, table)
    labels = np.zeros(full.n_ratings, dtype=np.int8)
    labels[n_train:] = 2
    info = {"protocol": "files", "train": str(train_path), "test": str(test_path)}
    return _finish(full, labels, info, drop_unseen_test)
