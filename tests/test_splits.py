"""Leak-free splits: property tests on small random Datasets, canonical ML-100K folds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from movierec.data.fetch import fetch
from movierec.data.movielens import build_dataset
from movierec.data.readers import RatingsTable
from movierec.data.split import (
    Split,
    carve_validation,
    concat,
    drop_unseen,
    earliest_in_time,
    files_split,
    kfold_splits,
    leave_last_k_split,
    ml100k_fold,
    ml100k_folds,
    random_split,
    temporal_split,
)
from movierec.errors import SplitError, UnknownItemError

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw, min_size: int = 2, max_size: int = 60):
    """Random small Datasets with repeated users/items and tied timestamps.

    The row number is folded into the rating's fraction so every interaction is
    recognisable after a split (ratings stay exact in float32).
    """
    n = draw(st.integers(min_size, max_size))
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 10))
    user = draw(st.lists(st.integers(1, n_users), min_size=n, max_size=n))
    item = draw(st.lists(st.integers(100, 100 + n_items), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    stars = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    rating = np.array(stars) + np.arange(n) / 128.0
    table = RatingsTable(user=np.array(user), item=np.array(item), rating=rating, timestamp=np.array(ts))
    return build_dataset("h", table)


def rows(ds) -> list[tuple]:
    return sorted(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), ds.rating.tolist(), ds.timestamp.tolist()))


def keys(ds) -> np.ndarray:
    """Sorted (user, item) keys; for data where each user rates an item once (ML-100K)."""
    return np.sort(ds.user_idx.astype(np.int64) * ds.n_items + ds.item_idx)


def check_unique_pair_partition(ds, split: Split) -> None:
    """check_partition for large data with unique (user, item) pairs, vectorised."""
    parts = list(split.parts().values())
    assert np.array_equal(np.sort(np.concatenate([keys(p) for p in parts])), keys(ds))
    assert all(p.users is ds.users and p.items is ds.items for p in parts)


def check_partition(ds, split: Split) -> None:
    """No interaction in two parts, none lost, IdMaps shared.

    The rows of `ds` must be distinct (true of the tagged random data and of ML-100K).
    """
    parts = list(split.parts().values())
    combined = sorted(r for p in parts for r in rows(p))
    assert combined == rows(ds)
    ids = [set(rows(p)) for p in parts]
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            assert not ids[a] & ids[b]
    for p in parts:
        assert p.users is ds.users and p.items is ds.items
        assert p.user_idx.dtype == np.int32 and p.timestamp.dtype == np.int64


def same(a: Split, b: Split) -> bool:
    return all(
        np.array_equal(pa.rating, pb.rating) and np.array_equal(pa.user_idx, pb.user_idx)
        for pa, pb in zip(a.parts().values(), b.parts().values())
    ) and a.parts().keys() == b.parts().keys()


# -- random ------------------------------------------------------------------------------
@PROPS
@given(datasets(), st.sampled_from([0.1, 0.2, 0.5]), st.sampled_from([0.0, 0.1, 0.2]), st.integers(0, 3))
def test_random_split_partitions_and_is_seeded(ds, test_fraction, validation_fraction, seed):
    n = ds.n_ratings
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * validation_fraction))
    if n_test == 0 or n_test + n_val == n:
        with pytest.raises(SplitError):
            random_split(ds, test_fraction, validation_fraction, seed=seed)
        return
    split = random_split(ds, test_fraction, validation_fraction, seed=seed)
    check_partition(ds, split)
    assert split.test.n_ratings == n_test
    assert (split.validation.n_ratings if split.validation is not None else 0) == n_val
    assert same(split, random_split(ds, test_fraction, validation_fraction, seed=seed))
    full = split.train_full()
    assert full.n_ratings == n - n_test and full.users is ds.users


def test_random_split_seed_changes_the_split(ml100k):
    a, b = random_split(ml100k, seed=1), random_split(ml100k, seed=2)
    assert not np.array_equal(a.test.rating, b.test.rating) or not np.array_equal(a.test.user_idx, b.test.user_idx)
    assert a.info["seed"] == 1 and a.test.n_ratings == 20_000


# -- temporal ----------------------------------------------------------------------------
@PROPS
@given(datasets(min_size=10), st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.0, 0.3), (0.5, 0.25, 0.25)]))
def test_temporal_split_respects_time(ds, fractions):
    split = temporal_split(ds, *fractions)
    check_partition(ds, split)
    train_max = split.train.timestamp.max()
    if split.validation is not None:
        assert train_max <= split.validation.timestamp.min()
        assert split.validation.timestamp.max() <= split.test.timestamp.min()
    assert train_max <= split.test.timestamp.min()
    assert split.train.n_ratings == int(round(ds.n_ratings * fractions[0]))


def test_temporal_split_ml100k(ml100k):
    split = temporal_split(ml100k, 0.8, 0.1, 0.1)
    assert split.train.timestamp.max() <= split.validation.timestamp.min() <= split.test.timestamp.min()
    assert split.info["test_start"] == int(split.test.timestamp.min())


@PROPS
@given(st.lists(st.integers(0, 5), max_size=40), st.integers(-2, 45))
def test_earliest_in_time_is_a_stable_sort_prefix(ts, m):
    """The O(n) selection picks exactly the first m rows of a stable sort (ties in row order)."""
    ts = np.array(ts, dtype=np.int64)
    expected = np.zeros(len(ts), dtype=bool)
    expected[np.argsort(ts, kind="stable")[: max(m, 0)]] = True
    assert np.array_equal(earliest_in_time(ts, m), expected)


@PROPS
@given(datasets(min_size=10), st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.0, 0.3), (0.5, 0.25, 0.25)]))
def test_temporal_split_is_the_stable_time_order(ds, fractions):
    """Each part holds exactly the rows of its share of a stable sort by time (ties keep
    file order), in file order; carving a temporal validation part takes the latest rows
    of the same order."""
    order = np.argsort(ds.timestamp, kind="stable")
    n_train, n_val = int(round(ds.n_ratings * fractions[0])), int(round(ds.n_ratings * fractions[1]))
    split = temporal_split(ds, *fractions)
    expected = {"train": order[:n_train], "validation": order[n_train : n_train + n_val],
                "test": order[n_train + n_val :]}
    for name, part in split.parts().items():
        assert np.array_equal(part.rating, ds.rating[np.sort(expected[name])]), name
    assert split.info["test_start"] == int(ds.timestamp[order[n_train + n_val]])
    fit, validation = carve_validation(ds, 0.3, temporal=True)
    held = order[-max(1, int(round(ds.n_ratings * 0.3))):]
    assert np.array_equal(validation.rating, ds.rating[np.sort(held)])
    assert fit.n_ratings + validation.n_ratings == ds.n_ratings


# -- leave last k per user -----------------------------------------------------------------
@PROPS
@given(datasets(), st.sampled_from([1, 2, 0.2, 0.5]), st.sampled_from([None, 0, 1]), st.integers(1, 2))
def test_leave_last_k_respects_time_per_user(ds, k, validation_k, min_train):
    try:
        split = leave_last_k_split(ds, k=k, validation_k=validation_k, min_train=min_train)
    except SplitError as exc:
        assert "empty" in str(exc)  # only when no user has enough history for a test part
        return
    check_partition(ds, split)
    parts = split.parts()
    for u in range(ds.n_users):
        ts = {name: p.timestamp[p.user_idx == u] for name, p in parts.items()}
        earlier = np.concatenate([ts["train"], ts.get("validation", np.array([], np.int64))])
        if len(ts["test"]) and len(earlier):
            assert ts["test"].min() >= earlier.max()
        if "validation" in ts and len(ts["validation"]) and len(ts["train"]):
            assert ts["validation"].min() >= ts["train"].max()
        total = len(earlier) + len(ts["test"])
        if total >= min_train:
            assert len(ts["train"]) >= min_train  # users keep their minimum training history
        if isinstance(k, int) and total >= min_train + k:
            assert len(ts["test"]) == k


def test_leave_last_one_ml100k(ml100k):
    split = leave_last_k_split(ml100k, k=1, validation_k=0)
    assert split.validation is None
    assert split.test.n_ratings == 943 and np.all(split.test.user_counts() == 1)
    check_unique_pair_partition(ml100k, split)



def expected_holdout(length: int, k, validation_k, min_train: int) -> tuple[int, int]:
    """(test, validation) sizes of one user's history: a fraction is rounded to the nearest
    whole number (at least 1), then cut so the user keeps `min_train` training items."""

    def amount(value) -> int:
        if isinstance(value, float) and 0 < value < 1:
            return max(1, int(np.floor(length * value + 0.5)))
        return int(value)

    room = max(length - min_train, 0)
    n_test = min(amount(k), room)
    n_val = min(amount(k if validation_k is None else validation_k), room - n_test)
    return n_test, n_val


def per_user_counts(split: Split, n_users: int) -> dict[str, np.ndarray]:
    return {name: np.bincount(p.user_idx, minlength=n_users) for name, p in split.parts().items()}


@PROPS
@given(datasets(), st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.7, 1, 2]), st.sampled_from([None, 0, 1, 0.2, 0.35]),
       st.integers(1, 3))
def test_leave_last_k_exact_sizes_per_user(ds, k, validation_k, min_train):
    """Each user's test and validation sizes are exactly the rounded-to-nearest shares."""
    lengths = ds.user_counts()
    for v in (k, validation_k):  # exact halves round either way; the rule is for the rest
        if isinstance(v, float):
            assume(not np.any(np.isclose((lengths * v) % 1, 0.5)))
    try:
        split = leave_last_k_split(ds, k=k, validation_k=validation_k, min_train=min_train)
    except SplitError as exc:
        assert "empty" in str(exc)
        return
    counts = per_user_counts(split, ds.n_users)
    for u in range(ds.n_users):
        n_test, n_val = expected_holdout(int(lengths[u]), k, validation_k, min_train)
        assert counts["test"][u] == n_test, (u, int(lengths[u]), k)
        assert counts.get("validation", np.zeros(ds.n_users, int))[u] == n_val, (u, int(lengths[u]), validation_k)
        assert counts["train"][u] == lengths[u] - n_test - n_val


def test_last20_rounds_to_nearest_on_ml100k(ml100k):
    """The last-20% protocol: every ML-100K user tests round(0.2 * history), not floor."""
    split = leave_last_k_split(ml100k, k=0.2, validation_k=0)
    lengths = ml100k.user_counts()
    expected = np.maximum(1, np.floor(lengths * 0.2 + 0.5)).astype(int)
    assert np.array_equal(split.test.user_counts(), expected)
    assert (np.floor(lengths * 0.2) != expected).sum() > 100  # floor would differ for many users
    assert split.test.n_ratings == int(expected.sum())
    check_unique_pair_partition(ml100k, split)


def test_fraction_keeps_minimum_and_training_history():
    """Tiny histories: a fraction still tests at least 1, and min_train items stay in train."""
    table = RatingsTable(user=np.array([1, 1, 2, 2, 2, 3]), item=np.array([10, 11, 10, 11, 12, 10]),
                         rating=np.ones(6), timestamp=np.array([1, 2, 1, 2, 3, 1]))
    ds = build_dataset("tiny", table)
    split = leave_last_k_split(ds, k=0.1, validation_k=0, min_train=1)
    counts = per_user_counts(split, ds.n_users)
    assert counts["test"].tolist() == [1, 1, 0]  # 0.1 * 2 and 0.1 * 3 round to 0 -> at least 1
    assert counts["train"].tolist() == [1, 2, 1]  # user 3 has one item: it stays in train


# -- k-fold ------------------------------------------------------------------------------
@PROPS
@given(datasets(min_size=6), st.integers(2, 5), st.integers(0, 3))
def test_kfold_covers_each_interaction_once(ds, n_folds, seed):
    folds = list(kfold_splits(ds, n_folds=n_folds, seed=seed))
    assert len(folds) == n_folds
    tests = sorted(r for f in folds for r in rows(f.test))
    assert tests == rows(ds)  # every interaction tests exactly once
    for f in folds:
        check_partition(ds, f)
    again = list(kfold_splits(ds, n_folds=n_folds, seed=seed))
    assert all(same(a, b) for a, b in zip(folds, again))


# -- drop unseen ---------------------------------------------------------------------------
@PROPS
@given(datasets(min_size=4), st.integers(0, 5))
def test_drop_unseen_reports_what_it_drops(ds, seed):
    try:
        base = random_split(ds, 0.5, seed=seed)
    except SplitError:
        assume(False)
    dropped_split = drop_unseen(base)
    counts = dropped_split.info["dropped"]
    lost = base.test.n_ratings - dropped_split.test.n_ratings
    assert lost == counts["test_unseen_user_ratings"] + counts["test_unseen_item_ratings"]
    seen_u = base.train.user_counts() > 0
    seen_i = base.train.item_counts() > 0
    assert seen_u[dropped_split.test.user_idx].all() and seen_i[dropped_split.test.item_idx].all()
    kept = set(rows(dropped_split.test))
    assert kept <= set(rows(base.test))
    assert dropped_split.train is base.train
    via_flag = random_split(ds, 0.5, seed=seed, drop_unseen_test=True)
    assert rows(via_flag.test) == rows(dropped_split.test) and via_flag.info["dropped"] == counts


# -- bad parameters ------------------------------------------------------------------------
def tiny():
    table = RatingsTable(np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2]), np.array([1.0, 2, 3, 4]), np.array([1, 2, 3, 4]))
    return build_dataset("tiny", table)


@pytest.mark.parametrize(
    "call",
    [
        lambda ds: random_split(ds, test_fraction=0),
        lambda ds: random_split(ds, test_fraction=1.0),
        lambda ds: random_split(ds, test_fraction=-0.1),
        lambda ds: random_split(ds, test_fraction=1.5),
        lambda ds: random_split(ds, test_fraction=0.5, validation_fraction=0.5),
        lambda ds: random_split(ds, test_fraction=0.2, validation_fraction=-0.1),
        lambda ds: temporal_split(ds, 0.8, 0.1, 0.2),
        lambda ds: temporal_split(ds, 1.0, 0.0, 0.0),
        lambda ds: temporal_split(ds, -0.2, 0.6, 0.6),
        lambda ds: leave_last_k_split(ds, k=0),
        lambda ds: leave_last_k_split(ds, k=-1),
        lambda ds: leave_last_k_split(ds, k=1.5),
        lambda ds: leave_last_k_split(ds, k=1, validation_k=2.5),
        lambda ds: list(kfold_splits(ds, n_folds=1)),
        lambda ds: list(kfold_splits(ds, n_folds=5)),
        lambda ds: ml100k_fold(ds, "u9"),
    ],
)
def test_bad_parameters_raise_split_error(call):
    with pytest.raises(SplitError) as info:
        call(tiny())
    assert str(info.value).endswith(".")


def test_time_splits_need_timestamps():
    table = RatingsTable(np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2]), np.array([1.0, 2, 3, 4]), None)
    ds = build_dataset("nots", table)
    with pytest.raises(SplitError, match="needs timestamps"):
        temporal_split(ds)
    with pytest.raises(SplitError, match="needs timestamps"):
        leave_last_k_split(ds)


# -- canonical ML-100K folds ------------------------------------------------------------------
def test_ml100k_u1(ml100k):
    split = ml100k_fold(ml100k, "u1")
    assert (split.train.n_ratings, split.test.n_ratings) == (80_000, 20_000)
    assert split.train.users is ml100k.users and split.test.items is ml100k.items
    assert split.info == {"protocol": "ml100k-folds", "fold": "u1"}
    assert (split.train.name, split.test.name) == (f"{ml100k.name}:u1:train", f"{ml100k.name}:u1:test")
    ml100k.to_csr("rating")  # cached on the full dataset: the fold parts must not reuse it
    assert split.train.to_csr("rating").nnz == 80_000 and ml100k_fold(ml100k, "u1").test.to_csr("rating").nnz == 20_000
    assert split.train.has_timestamps and split.test.has_timestamps and split.test.rating.dtype == np.float32
    assert split.train.user_idx.dtype == np.int32 and split.test.timestamp.dtype == np.int64
    # the first line of u1.test is "1 6 5 887431973"
    first = (split.test.users.raw(split.test.user_idx[0]), split.test.items.raw(split.test.item_idx[0]))
    assert first == (1, 6) and split.test.rating[0] == 5.0


def test_ml100k_five_folds_partition_the_data(ml100k):
    folds = list(ml100k_folds(ml100k, folder=fetch("ml-100k")))
    assert [f.info["fold"] for f in folds] == ["u1", "u2", "u3", "u4", "u5"]
    assert len(np.unique(keys(ml100k))) == 100_000
    tests = np.sort(np.concatenate([keys(f.test) for f in folds]))
    assert np.array_equal(tests, keys(ml100k))  # each rating is in exactly one u*.test
    for f in folds:
        check_unique_pair_partition(ml100k, f)
    # the folds carry the same ratings and timestamps as u.data
    u1 = folds[0]
    full = dict(zip(ml100k.user_idx.astype(np.int64) * 1682 + ml100k.item_idx, zip(ml100k.rating, ml100k.timestamp)))
    sample = u1.test.user_idx[:50].astype(np.int64) * 1682 + u1.test.item_idx[:50]
    assert [full[k] for k in sample] == list(zip(u1.test.rating[:50], u1.test.timestamp[:50]))


@pytest.mark.parametrize("fold", ["ua", "ub"])
def test_ml100k_ua_ub(ml100k, fold):
    split = ml100k_fold(ml100k, fold)
    assert split.test.n_ratings == 9_430 and np.all(split.test.user_counts() == 10)
    assert split.train.n_ratings == 90_570


# -- explicit files ------------------------------------------------------------------------
def test_files_split_shares_idmaps(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("user,item,rating,timestamp\n1,10,4,1\n1,20,3,2\n2,10,5,3\n")
    test.write_text("user,item,rating,timestamp\n2,20,2,4\n3,10,1,5\n1,30,4,6\n")
    split = files_split(train, test)
    assert split.info == {"protocol": "files", "train": str(train), "test": str(test)}
    assert (split.train.name, split.test.name) == ("train:train", "train:test")
    assert split.test.has_timestamps and split.test.timestamp.tolist() == [4, 5, 6]
    assert split.train.users is split.test.users and split.train.items is split.test.items
    assert split.train.users.to_list() == [1, 2, 3]  # the test-only user is in the map
    assert split.train.items.to_list() == [10, 20, 30]
    assert (split.train.n_ratings, split.test.n_ratings) == (3, 3)
    assert split.train.user_counts()[split.train.users.index_of(3)] == 0
    dropped = files_split(train, test, drop_unseen_test=True)
    assert dropped.test.n_ratings == 1
    assert dropped.info["dropped"]["test_unseen_user_ratings"] == 1
    assert dropped.info["dropped"]["test_unseen_item_ratings"] == 1
    with pytest.raises(UnknownItemError):
        split.train.items.lookup([40])


def test_files_split_mixed_id_types(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("user,item,rating\n1,10,4\n2,10,5\n")
    test.write_text("user,item,rating\nalice,10,2\n1,10,3\n")
    split = files_split(train, test)
    assert split.train.users is split.test.users
    assert split.test.users.raw(split.test.user_idx).tolist() == ["alice", "1"]
    # "1" in the test file is user 1 of the training file (one user, one index), both ways round
    assert len(split.train.users) == 3 and split.test.user_idx[1] == split.train.user_idx[0]
    back = files_split(test, train)
    assert len(back.train.users) == 3 and back.train.user_idx[1] == back.test.user_idx[0]
    assert not split.test.has_timestamps


def test_files_split_needs_matching_timestamps(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("user,item,rating,timestamp\n1,10,4,1\n")
    test.write_text("user,item,rating\n1,10,3\n")
    with pytest.raises(SplitError, match=r"^The train and test files must both have timestamps or both lack them\.$"):
        files_split(train, test)


# -- what each split records, and its exact refusals (found by mutation testing) -------------
def twelve():
    """3 users x 4 movies, every user rated every movie at distinct times."""
    user = np.repeat([1, 2, 3], 4)
    item = np.tile([10, 20, 30, 40], 3)
    return build_dataset("twelve", RatingsTable(user, item, np.arange(12) / 4.0 + 1, np.arange(12) * 10))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ds: random_split(ds, test_fraction=0), "test_fraction must be in (0, 1), got 0."),
        (lambda ds: random_split(ds, test_fraction=1), "test_fraction must be in (0, 1), got 1."),
        (lambda ds: random_split(ds, validation_fraction=-0.1), "validation_fraction must be in [0, 1), got -0.1."),
        (lambda ds: random_split(ds, test_fraction=0.5, validation_fraction=0.5),
         "test_fraction + validation_fraction must be below 1."),
        (lambda ds: random_split(ds, test_fraction=0.6, validation_fraction=0.4),
         "test_fraction + validation_fraction must be below 1."),
        (lambda ds: temporal_split(ds, 1.5, 0.0, -0.5), "train fraction must be in [0, 1], got 1.5."),
        (lambda ds: temporal_split(ds, 0.5, -0.5, 1.0), "validation fraction must be in [0, 1], got -0.5."),
        (lambda ds: temporal_split(ds, 0.0, 0.0, 1.0),
         "train, validation and test fractions must be positive (validation may be 0) and sum to 1, got 0.0, 0.0, 1.0."),
        (lambda ds: temporal_split(ds, 1.0, 0.0, 0.0),
         "train, validation and test fractions must be positive (validation may be 0) and sum to 1, got 1.0, 0.0, 0.0."),
        (lambda ds: leave_last_k_split(ds, k=0), "k must be at least 1 (or a fraction in (0, 1))."),
        (lambda ds: leave_last_k_split(ds, k=0.0), "k must be at least 1 (or a fraction in (0, 1))."),
        (lambda ds: leave_last_k_split(ds, k=2.5),
         "holdout must be a whole number >= 0 or a fraction in (0, 1), got 2.5."),
        (lambda ds: list(kfold_splits(ds, n_folds=1)), "n_folds must be at least 2, got 1."),
        (lambda ds: list(kfold_splits(ds, n_folds=2.0)), "n_folds must be at least 2, got 2.0."),
        (lambda ds: list(kfold_splits(ds, n_folds=13)), "n_folds (13) exceeds the number of ratings (12)."),
        (lambda ds: ml100k_fold(ds, "u9"), "Unknown ML-100K fold 'u9'; choose one of u1, u2, u3, u4, u5, ua, ub."),
        (lambda ds: concat(ds, tiny()), "Cannot join parts of different datasets (their ID maps differ)."),
        (lambda ds: carve_validation(ds, 0), "fraction must be in (0, 1), got 0."),
        (lambda ds: temporal_split(build_dataset("nots", RatingsTable(np.array([1]), np.array([1]), np.array([1.0]), None))),
         "A temporal split needs timestamps, and nots has none."),
        (lambda ds: leave_last_k_split(build_dataset("nots", RatingsTable(np.array([1]), np.array([1]), np.array([1.0]), None))),
         "A leave-last split needs timestamps, and nots has none."),
        (lambda ds: temporal_split(ds, 0.5, 0.0, 1.5), "test fraction must be in [0, 1], got 1.5."),
        (lambda ds: temporal_split(ds, 0.5, 0.46, 0.04),
         "The temporal split of twelve left train or test empty; use more data or other fractions."),
        (lambda ds: random_split(ds.subset(ds.user_idx == 0), test_fraction=0.1),
         "The random split of twelve left train or test empty; use more data or other fractions."),
    ],
)
def test_refusals_say_exactly_what_is_wrong(call, message):
    with pytest.raises(SplitError) as info:
        call(twelve())
    assert str(info.value) == message


def test_every_protocol_records_how_it_split_and_names_its_parts():
    ds = twelve()
    split = random_split(ds, test_fraction=0.25, validation_fraction=0.25, seed=3)
    assert split.info == {"protocol": "random", "seed": 3, "test_fraction": 0.25, "validation_fraction": 0.25}
    assert [p.name for p in split.parts().values()] == ["twelve:train", "twelve:validation", "twelve:test"]
    assert [p.n_ratings for p in split.parts().values()] == [6, 3, 3]
    assert repr(split) == f"Split(train=6, validation=3, test=3, info={split.info})"
    assert random_split(ds).info["seed"] == 42 and random_split(ds).validation is None
    assert repr(random_split(ds)).startswith("Split(train=10, test=2, info=")
    assert same(random_split(ds), random_split(ds, seed=42))
    # one training rating is enough
    two = ds.subset(ds.item_idx == 0).subset(np.arange(3) < 2)
    assert random_split(two, test_fraction=0.5).train.n_ratings == 1

    split = temporal_split(ds, 0.5, 0.25, 0.25)
    assert split.info == {"protocol": "temporal", "fractions": [0.5, 0.25, 0.25], "test_start": 90}
    assert split.train.timestamp.max() == 50 and split.test.timestamp.min() == 90
    assert temporal_split(ds, 0.75, 0.0, 0.25).info["test_start"] == 90
    assert temporal_split(ds).info["fractions"] == [0.8, 0.1, 0.1]
    # ties keep file order: with one timestamp for all, the first rows train
    tied = build_dataset("tied", RatingsTable(np.arange(100) % 7, np.arange(100) % 11, np.arange(100) / 128 + 1,
                                              np.repeat([5, 3], 50)))
    t = temporal_split(tied, 0.3, 0.0, 0.7)
    assert sorted(np.round((t.train.rating - 1) * 128).astype(int).tolist()) == list(range(50, 80))

    split = leave_last_k_split(ds, k=1)
    assert split.info == {"protocol": "leave-last", "k": 1, "validation_k": 1, "min_train": 1}
    assert split.test.timestamp.tolist() == [30, 70, 110] and split.validation.timestamp.tolist() == [20, 60, 100]
    assert [p.name for p in split.parts().values()] == ["twelve:train", "twelve:validation", "twelve:test"]
    # whole numbers given as floats, and min_train defaulting to 1: a 3-rating user keeps 1 in train
    split = leave_last_k_split(ds.subset(ds.timestamp != 0), k=1.0 * 2, validation_k=0)
    assert split.info["k"] == 2.0 and split.train.n_ratings == 5 and split.validation is None
    assert split.train.user_counts().tolist() == [1, 2, 2]
    assert leave_last_k_split(ds).info == {"protocol": "leave-last", "k": 1, "validation_k": 1, "min_train": 1}
    assert leave_last_k_split(ds, k=1.0).test.n_ratings == 3  # 1.0 is one rating, not the whole history
    assert leave_last_k_split(ds, k=1, validation_k=0.0).validation is None
    # fractions: round(4 * 0.5) = 2 per user
    assert leave_last_k_split(ds, k=0.5, validation_k=0).test.n_ratings == 6

    folds = list(kfold_splits(ds, n_folds=3, seed=5))
    assert [f.info for f in folds] == [{"protocol": "kfold", "fold": f, "n_folds": 3, "seed": 5} for f in range(3)]
    assert [f.test.n_ratings for f in folds] == [4, 4, 4] and folds[0].test.name == "twelve:test"
    assert all(f.test.rating.dtype == np.float32 and f.validation is None for f in folds)
    assert [f.info["seed"] for f in kfold_splits(ds)] == [42] * 5
    assert len(list(kfold_splits(ds, n_folds=12))) == 12  # one rating per fold is allowed


def test_drop_unseen_names_every_count(tmp_path):
    ds = twelve()
    # user 3 only in validation/test, movie 40 only in test
    labels_train = (ds.user_idx != 2) & (ds.item_idx != 3)
    split = Split(train=ds.subset(labels_train), validation=ds.subset((ds.user_idx == 2) & (ds.item_idx == 0)),
                  test=ds.subset(~labels_train & ~((ds.user_idx == 2) & (ds.item_idx == 0))), info={"protocol": "x"})
    out = drop_unseen(split)
    assert out.info == {"protocol": "x", "dropped": {
        "validation_unseen_user_ratings": 1, "validation_unseen_users": 1,
        "validation_unseen_item_ratings": 0, "validation_unseen_items": 0,
        "test_unseen_user_ratings": 3, "test_unseen_users": 1,
        "test_unseen_item_ratings": 2, "test_unseen_items": 1}}
    assert out.validation.n_ratings == 0 and out.test.n_ratings == 0
    assert split.info == {"protocol": "x"}  # the input is left alone
    only_items = drop_unseen(split, users=False)
    assert only_items.info["dropped"] == {"validation_unseen_item_ratings": 0, "validation_unseen_items": 0,
                                          "test_unseen_item_ratings": 3, "test_unseen_items": 1}
    assert only_items.validation.n_ratings == 1 and only_items.test.n_ratings == 2
    no_val = drop_unseen(Split(train=split.train, test=split.test))
    assert no_val.validation is None and set(no_val.info["dropped"]) == {
        "test_unseen_user_ratings", "test_unseen_users", "test_unseen_item_ratings", "test_unseen_items"}
    # the split functions pass drop_unseen_test on
    assert "dropped" in temporal_split(ds, 0.5, 0.0, 0.5, drop_unseen_test=True).info
    assert "dropped" in leave_last_k_split(ds, drop_unseen_test=True).info
    assert "dropped" in random_split(ds, drop_unseen_test=True).info
    assert "dropped" not in temporal_split(ds, 0.5, 0.0, 0.5).info


def test_concat_and_train_full():
    ds = twelve()
    split = random_split(ds, test_fraction=0.25, validation_fraction=0.25, seed=1)
    full = split.train_full()
    assert full.name == "twelve:train" and full.n_ratings == 9
    assert full.users is ds.users and rows(full) == sorted(rows(split.train) + rows(split.validation))
    assert concat(split.train, split.test).name == "twelve:train"
    assert concat(split.train, split.test, name="both").name == "both"
    plain = random_split(ds)
    assert plain.train_full() is plain.train
    # equal (not identical) ID maps join; the joined CSR is rebuilt
    split.train.to_csr("rating")  # cached on the part; the joined data must not reuse it
    rebuilt = build_dataset("twelve", RatingsTable(np.repeat([1, 2, 3], 4), np.tile([10, 20, 30, 40], 3),
                                                   np.ones(12), np.arange(12)))
    assert concat(split.train, rebuilt).to_csr("rating").nnz == 12


def test_carve_validation_partitions_the_training_data():
    ds = twelve()
    fit, val = carve_validation(ds, 0.25, seed=7)
    assert (fit.n_ratings, val.n_ratings) == (9, 3) and (fit.name, val.name) == ("twelve:fit", "twelve:validation")
    assert sorted(rows(fit) + rows(val)) == rows(ds)
    again = carve_validation(ds, 0.25, seed=7)[1]
    assert rows(again) == rows(val) and rows(carve_validation(ds, 0.25)[1]) == rows(carve_validation(ds, 0.25, seed=42)[1])
    assert carve_validation(ds, 0.01)[1].n_ratings == 1  # at least one
    assert sorted(carve_validation(ds, 0.25)[1].timestamp.tolist()) != [90, 100, 110]  # random unless asked
    latest = carve_validation(ds, 0.25, temporal=True)[1]
    assert sorted(latest.timestamp.tolist()) == [90, 100, 110]


def test_files_split_passes_reader_options(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("who,what,stars\n1,10,4\n2,10,5\n")
    test.write_text("who,what,stars\n2,10,2\n")
    split = files_split(train, test, user_col="who", item_col="what", rating_col="stars")
    assert split.train.rating.tolist() == [4.0, 5.0] and split.test.rating.tolist() == [2.0]
