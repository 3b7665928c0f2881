"""Defaults that generalise (issue 20): the `id-order` baseline named apart from `pop`, whose
list on new movies is its lowest-ID-first tie-break (the contract suite runs over id-order in
tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.evaluation.cold_movies import cold_candidates, cold_movie_split
from movierec.models import create, get_class
from movierec.models.baselines import IdOrderRecommender


@pytest.fixture(scope="module")
def cold_split(ml100k):
    return cold_movie_split(ml100k, 0.1, seed=42)


def test_id_order_ranks_lowest_raw_id_first(small_split):
    train = small_split.train
    model = IdOrderRecommender().fit(train)
    users = train.users.raw(np.arange(3))
    recs = model.recommend(users, k=50, exclude_seen=False)
    for row in range(3):
        got = recs.items_of(row)
        np.testing.assert_array_equal(got, np.sort(train.items.raw_ids)[:50])
    # seen movies are left out, the rest keep ascending raw-ID order
    seen = set(train.items.raw(train.to_csr("ones")[0].indices).tolist())  # users[0] is index 0
    got = model.recommend(users[:1], k=30).items_of(0)
    expected = [m for m in np.sort(train.items.raw_ids) if m not in seen][:30]
    np.testing.assert_array_equal(got, expected)
    assert model.name == "id-order" and create("id-order").get_params() == {}
    assert not get_class("id-order").capabilities.names()


def test_pop_ranks_new_movies_exactly_as_id_order(cold_split):
    """Among movies with no training ratings pop's list is its tie-break: id-order's list."""
    train = cold_split.train_full()
    cold = cold_candidates(cold_split)
    assert train.item_counts()[cold].sum() == 0
    users = train.users.raw(np.arange(5))
    pop = create("pop").fit(train).recommend(users, k=20, candidates=train.items.raw(np.flatnonzero(cold)))
    ids = create("id-order").fit(train).recommend(users, k=20, candidates=train.items.raw(np.flatnonzero(cold)))
    for row in range(len(users)):
        np.testing.assert_array_equal(pop.items_of(row), ids.items_of(row))
        assert np.all(np.diff(ids.items_of(row)) > 0)
