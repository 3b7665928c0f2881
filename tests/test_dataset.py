"""Dataset: compact arrays, CSR views, subsets sharing IdMaps and metadata, fingerprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.dataset import Catalog
from movierec.data.idmap import IdMap
from movierec.data.movielens import build_dataset
from movierec.data.readers import RatingsTable


def small(timestamps: bool = True):
    table = RatingsTable(
        user=np.array([10, 10, 20, 30, 30, 30]),
        item=np.array([7, 8, 7, 9, 8, 7]),
        rating=np.array([5, 3, 4, 1, 2, 5], dtype=np.float64),
        timestamp=np.array([5, 1, 3, 2, 6, 4]) if timestamps else None,
    )
    movies = pd.DataFrame(
        {"item_id": [7, 8, 11], "title": ["Seven", "Eight", "Unrated"], "year": [1995, 2001, 1990],
         "genres": [["Drama", "Crime"], ["Comedy"], ["Drama"]]}
    )
    users = pd.DataFrame({"user_id": [30, 10, 20, 99], "age": [30, 10, 20, 99]})
    return build_dataset("small", table, movies, users)


def test_arrays_and_sizes():
    ds = small()
    assert (ds.n_users, ds.n_items, ds.n_ratings, len(ds)) == (3, 3, 6, 6)
    assert ds.user_idx.dtype == np.int32 and ds.item_idx.dtype == np.int32
    assert ds.rating.dtype == np.float32 and ds.timestamp.dtype == np.int64
    assert ds.rating_scale == (1.0, 5.0)
    assert ds.user_counts().tolist() == [2, 1, 3] and ds.item_counts().tolist() == [3, 2, 1]
    assert "small" in repr(ds)


def test_no_timestamps():
    ds = small(timestamps=False)
    assert not ds.has_timestamps and ds.timestamp.dtype == np.int64 and not ds.timestamp.any()


def test_catalog_and_features_aligned():
    ds = small()
    cat = ds.catalog
    assert cat.titles.tolist() == ["Seven", "Eight", ""]  # item 9 has no catalog row
    assert cat.years.tolist() == [1995, 2001, -1]
    assert cat.genre_names == ["Comedy", "Crime", "Drama"]
    assert cat.genre_matrix.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert cat.label(0) == "Seven (1995)" and cat.label(2) == "?"
    frame = cat.to_frame(ds.items)
    assert frame["item_id"].tolist() == [7, 8, 9] and frame["genres"][0] == "Drama|Crime"
    # user features: indexed by user index, unknown user 99 dropped
    assert ds.user_features.index.tolist() == [0, 1, 2]
    assert ds.user_features["age"].tolist() == [10, 20, 30]


def test_empty_catalog():
    cat = Catalog.empty(2)
    assert cat.genre_matrix.shape == (2, 0) and cat.years.tolist() == [-1, -1]
    assert Catalog.from_frame(IdMap([1, 2]), pd.DataFrame()).titles.tolist() == ["", ""]


def test_empty_catalog_leaves_the_garbage_collector_as_it_was():
    """Its genre lists are made with the collector paused; the collector is on again after,
    and stays off where the caller had turned it off."""
    import gc

    assert gc.isenabled()
    cat = Catalog.empty(3)
    assert gc.isenabled()
    cat.genres[0].append("Drama")  # one list per movie, not one shared list
    assert cat.genres[1] == []
    gc.disable()
    try:
        Catalog.empty(3)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_csr_orientation_users_by_items():
    ds = small()
    m = ds.to_csr()
    assert m.shape == (ds.n_users, ds.n_items) and m.dtype == np.float32
    u, i = ds.users.index_of(30), ds.items.index_of(9)
    assert m[u, i] == 1.0
    assert m.nnz == 6 and ds.to_csr() is m  # cached
    ones = ds.to_csr("ones")
    assert ones.sum() == 6 and set(ones.data) == {1.0}


def test_subset_shares_maps_and_metadata():
    ds = small()
    part = ds.subset(ds.rating >= 4, name="high")
    assert part.users is ds.users and part.items is ds.items and part.catalog is ds.catalog
    assert part.n_users == ds.n_users and part.n_ratings == 3 and part.name == "high"
    assert part.to_csr().shape == ds.to_csr().shape
    assert part.active_users().tolist() == [0, 1, 2]
    assert ds.subset(np.array([0, 2])).rating.tolist() == [5.0, 4.0]


def test_to_frame_raw_and_indices():
    ds = small()
    raw = ds.to_frame()
    assert raw["user"].tolist() == [10, 10, 20, 30, 30, 30] and raw["item"].tolist() == [7, 8, 7, 9, 8, 7]
    idx = ds.to_frame(raw_ids=False)
    assert idx["user"].tolist() == ds.user_idx.tolist()


def test_fingerprint():
    a, b = small(), small()
    assert a.fingerprint() == b.fingerprint()
    b.rating[0] = 1.0
    assert a.fingerprint() != b.fingerprint()


def test_mismatched_lengths_rejected():
    ds = small()
    from dataclasses import replace

    with pytest.raises(ValueError):
        replace(ds, rating=ds.rating[:2])


def test_ml100k_csr(ml100k):
    m = ml100k.to_csr()
    assert m.shape == (943, 1682) and m.nnz == 100_000
    assert m.sum() == pytest.approx(float(ml100k.rating.sum()))


def test_natural_title_moves_a_trailing_article_to_the_front():
    from movierec.data.dataset import natural_title

    assert natural_title("Godfather, The") == "The Godfather"
    assert natural_title("Boot, Das") == "Das Boot"
    assert natural_title("Close Shave, A") == "A Close Shave"
    assert natural_title("Enfer, L'") == "L'Enfer"
    assert natural_title("Good, the Bad and the Ugly, The") == "The Good, the Bad and the Ugly"
    assert natural_title("Fargo") == "Fargo"
    assert natural_title("Sense and Sensibility") == "Sense and Sensibility"
