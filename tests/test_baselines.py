"""Baselines follow the Recommender contract and behave as their names say."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.split import temporal_split
from movierec.errors import ConfigError, NotFittedError
from movierec.models import create
from movierec.models.baselines import PopularInWindow, PopularRecommender, RandomRecommender
from movierec.models.base import Recommender

NAMES = ("random", "pop", "pop-recent")


@pytest.fixture(scope="module")
def split(ml100k):
    return temporal_split(ml100k, 0.8, 0.1, 0.1)


@pytest.mark.parametrize("name", NAMES)
def test_contract(name, split, tmp_path):
    model = create(name)
    assert isinstance(model, Recommender) and model.name == name
    with pytest.raises(NotFittedError):
        model.recommend([1], k=5)
    assert model.fit(split.train, split.validation) is model
    users = split.train.users.raw(np.arange(5))
    recs = model.recommend(users, k=7)
    assert recs.item_ids.shape == (5, 7)
    seen = split.train.to_csr("ones")
    for row, u in zip(recs.item_ids, model.user_index(users)):
        idx = model.item_index(row)
        assert seen[u, idx].sum() == 0  # training items excluded
        assert len(set(row.tolist())) == 7
    again = create(name).fit(split.train, split.validation).recommend(users, k=7)
    np.testing.assert_array_equal(recs.item_ids, again.item_ids)  # deterministic
    path = model.save(tmp_path / name)
    loaded = Recommender.load(path)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


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
