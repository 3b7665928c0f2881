"""Baselines behave as their names say (the generic Recommender contract runs over them in
tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.split import temporal_split
from movierec.errors import CapabilityError, ConfigError
from movierec.models import create
from movierec.models.baselines import PopularInWindow, PopularRecommender, RandomRecommender

NAMES = ("random", "pop", "pop-recent")


@pytest.fixture(scope="module")
def split(ml100k):
    return temporal_split(ml100k, 0.8, 0.1, 0.1)


def test_random_is_batch_independent_and_seeded(split):
    model = RandomRecommender(seed=1).fit(split.train)
    users = np.arange(20)
    whole = model._score(users)
    parts = np.vstack([model._score(users[:7]), model._score(users[7:])])
    np.testing.assert_array_equal(whole, parts)
    assert whole.min() >= 0 and whole.max() < 1
    other = RandomRecommender(seed=2).fit(split.train)._score(users)
    assert not np.array_equal(whole, other)
    # roughly uniform: every item lands in someone's top 10 across all users
    idx, _ = model.rank_indices(np.arange(split.train.n_users), 10)
    assert len(np.unique(idx)) > 0.9 * split.train.n_items


def test_pop_ranks_by_training_count(split):
    model = PopularRecommender().fit(split.train)
    counts = split.train.item_counts()
    idx, _ = model.rank_indices(np.array([0]), 20)
    ranked_counts = counts[idx[0]]
    assert np.all(np.diff(ranked_counts) <= 0)
    assert ranked_counts[0] == counts.max()
    liked = PopularRecommender(min_rating=4).fit(split.train)
    liked_counts = np.bincount(split.train.item_idx[split.train.rating >= 4], minlength=split.train.n_items)
    top = liked.rank_indices(np.array([0]), 1)[0][0, 0]
    assert liked_counts[top] == liked_counts.max()


def test_pop_recent_uses_the_window(split):
    train = split.train
    model = PopularInWindow(window_days=14).fit(train)
    start = train.timestamp.max() - 14 * 86400
    recent = np.bincount(train.item_idx[train.timestamp >= start], minlength=train.n_items)
    top = model.rank_indices(np.array([0]), 5)[0][0]
    assert np.all(np.diff(recent[top]) <= 0)
    assert recent[top[0]] == recent.max()
    with pytest.raises(ConfigError):
        PopularInWindow(window_days=0).fit(train)


def test_registered_names():
    for name in NAMES:
        assert create(name).name == name
    with pytest.raises(ConfigError):
        create("pop", bogus=1)


def test_random_declares_no_cold_start_or_vectors(split):
    model = RandomRecommender().fit(split.train)
    items = split.train.items.raw([0, 1, 2])
    for call in (lambda: model.fold_in(items), lambda: model.recommend_new(items, k=3),
                 lambda: model.embeddings(), lambda: model.similar_items(items, k=3)):
        with pytest.raises(CapabilityError):
            call()
    assert RandomRecommender.search_space == {}


@pytest.mark.parametrize("name", ["pop", "pop-recent"])
def test_popularity_serves_a_new_person(name, split):
    """A new person gets the trained popularity order, minus the movies they gave."""
    model = create(name).fit(split.train)
    order = model.rank_indices(np.array([0]), 30, exclude=None)[0][0]
    given = split.train.items.raw(order[[0, 2, 5]])
    recs = model.recommend_new(given, k=10)
    expected = split.train.items.raw(np.delete(order, [0, 2, 5])[:10])
    np.testing.assert_array_equal(recs.items_of(0), expected)
    assert recs.user_ids.tolist() == [-1]
    # the same with ratings, and with the given movies kept in when asked
    np.testing.assert_array_equal(model.recommend_new(given, [5, 1, 3], k=10).items_of(0), expected)
    np.testing.assert_array_equal(model.recommend_new(given, k=3, exclude_given=False).items_of(0),
                                  split.train.items.raw(order[:3]))
