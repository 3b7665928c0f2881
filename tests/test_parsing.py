"""Parsing every MovieLens format, and a user's own files, into one Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures.movielens_files import (
    CSV_RATINGS,
    ML1M_RATINGS,
    ML10M_RATINGS,
    write_csv_family,
    write_ml1m,
    write_ml10m,
)
from movierec.data import load_movielens, load_ratings
from movierec.data.movielens import get_spec, parse_movielens, split_title
from movierec.errors import DatasetError


def check_dtypes(ds) -> None:
    assert ds.user_idx.dtype == np.int32 and ds.item_idx.dtype == np.int32
    assert ds.rating.dtype == np.float32 and ds.timestamp.dtype == np.int64
    assert ds.user_idx.min() == 0 and ds.user_idx.max() == ds.n_users - 1
    assert ds.item_idx.min() == 0 and ds.item_idx.max() == ds.n_items - 1
    assert len(ds.catalog.titles) == ds.n_items and ds.catalog.genre_matrix.shape[0] == ds.n_items


def by_raw(ds, user, item) -> float:
    """The rating of raw (user, item), looked up through the IdMaps."""
    u, i = ds.users.index_of(user), ds.items.index_of(item)
    hit = np.flatnonzero((ds.user_idx == u) & (ds.item_idx == i))
    assert len(hit) == 1
    return float(ds.rating[hit[0]])


# -- ML-100K (real data through the mirror) ----------------------------------------------
def test_ml100k_sizes_and_dtypes(ml100k):
    assert (ml100k.n_ratings, ml100k.n_users, ml100k.n_items) == (100_000, 943, 1682)
    check_dtypes(ml100k)
    assert ml100k.has_timestamps and ml100k.rating_scale == (1.0, 5.0)
    assert set(np.unique(ml100k.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert by_raw(ml100k, 196, 242) == 3.0  # the first line of u.data: 196 242 3 881250949


def test_ml100k_catalog(ml100k):
    cat = ml100k.catalog
    toy = ml100k.items.index_of(1)
    assert (cat.titles[toy], int(cat.years[toy])) == ("Toy Story", 1995)
    assert cat.genres[toy] == ["Animation", "Children's", "Comedy"]
    assert cat.label(toy) == "Toy Story (1995)"
    assert len(cat.genre_names) == 18 and "unknown" not in cat.genre_names
    assert cat.genre_matrix.shape == (1682, 18) and cat.genre_matrix.dtype == np.uint8
    for i in (toy, 0, 500, 1681):  # multi-hot agrees with the genre lists
        assert sorted(np.array(cat.genre_names)[cat.genre_matrix[i] == 1]) == sorted(cat.genres[i])
    # u.item is ISO-8859-1: accented titles decode correctly
    titles = set(cat.titles)
    assert "Misérables, Les" in titles
    assert any("é" in t for t in titles) and not any("\ufffd" in t or "Ã" in t for t in titles)
    assert (cat.years > 1900).mean() > 0.99


def test_ml100k_user_features(ml100k):
    feats = ml100k.user_features
    assert list(feats.index) == list(range(943))  # aligned with user indices
    assert {"age", "gender", "occupation"} <= set(feats.columns)
    first = feats.loc[ml100k.users.index_of(1)]
    assert (int(first["age"]), first["gender"], first["occupation"]) == (24, "M", "technician")
    assert set(feats["gender"]) == {"M", "F"}


def test_ml100k_loads_again_from_cache():
    again = load_movielens("ml-100k")  # the session's cache is warm: no download, just parse
    assert again.n_ratings == 100_000


def test_ml_latest_small(ml_small):
    assert (ml_small.n_ratings, ml_small.n_users, ml_small.n_items) == (100_836, 610, 9724)
    check_dtypes(ml_small)
    assert ml_small.rating_scale == (0.5, 5.0) and 0.5 in set(ml_small.rating)
    toy = ml_small.items.index_of(1)
    assert ml_small.catalog.titles[toy] == "Toy Story" and ml_small.catalog.years[toy] == 1995
    assert "(no genres listed)" not in ml_small.catalog.genre_names
    assert ml_small.user_features is None


# -- 1M / 10M `::` formats, CSV family (small fixtures in the exact formats) ---------------
def test_ml1m_format(tmp_path):
    ds = parse_movielens(get_spec("ml-1m"), write_ml1m(tmp_path / "ml-1m"))
    check_dtypes(ds)
    assert (ds.n_ratings, ds.n_users, ds.n_items) == (len(ML1M_RATINGS), 3, 4)
    assert by_raw(ds, 1, 1193) == 5.0 and by_raw(ds, 3, 914) == 1.0
    assert ds.timestamp[0] == 978300760
    amelie = ds.items.index_of(3408)  # movies.dat is ISO-8859-1
    assert ds.catalog.titles[amelie] == "Amélie (Fabuleux destin d'Amélie Poulain, Le)"
    assert ds.catalog.years[amelie] == 2001 and ds.catalog.genres[amelie] == ["Comedy", "Romance"]
    assert ds.catalog.genres[ds.items.index_of(661)] == ["Animation", "Children's", "Musical"]
    assert 9999 not in ds.items  # a catalog row nobody rated is not an item
    feats = ds.user_features
    row = feats.loc[ds.users.index_of(2)]
    assert (row["gender"], int(row["age"]), int(row["occupation"]), row["zip"]) == ("M", 56, 16, "70072")


def test_ml10m_format(tmp_path):
    ds = parse_movielens(get_spec("ml-10m"), write_ml10m(tmp_path / "ml-10M100K"))
    check_dtypes(ds)
    assert ds.n_ratings == len(ML10M_RATINGS)
    assert by_raw(ds, 1, 185) == 4.5 and by_raw(ds, 2, 122) == 0.5  # half stars
    assert ds.catalog.titles[ds.items.index_of(185)] == "Net, The"
    assert ds.user_features is None and ds.rating_scale == (0.5, 5.0)


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-32m"])
def test_csv_family_format(tmp_path, name):
    ds = parse_movielens(get_spec(name), write_csv_family(tmp_path / name))
    check_dtypes(ds)
    assert ds.n_ratings == len(CSV_RATINGS)
    assert by_raw(ds, 1, 306) == 3.5
    cat = ds.catalog
    red = ds.items.index_of(306)  # quoted title with a colon and parentheses
    assert (cat.titles[red], int(cat.years[red])) == ("Three Colors: Red (Trois couleurs: Rouge)", 1994)
    assert cat.genres[ds.items.index_of(207405)] == []  # "(no genres listed)"
    assert cat.genre_matrix[ds.items.index_of(207405)].sum() == 0
    assert ds.timestamp.max() == 1439472215


def test_parse_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="fetch it first"):
        parse_movielens(get_spec("ml-1m"), tmp_path / "nowhere")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Toy Story (1995)", ("Toy Story", 1995)),
        ("Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", ("Amélie (Fabuleux destin d'Amélie Poulain, Le)", 2001)),
        ("Stranger Things (2016-)", ("Stranger Things", 2016)),
        ("Babylon 5 (1994–1998)", ("Babylon 5", 1994)),
        ("  Untitled  ", ("Untitled", -1)),
        ("1984 (1984)", ("1984", 1984)),
    ],
)
def test_split_title(raw, expected):
    assert split_title(raw) == expected


# -- a user's own files ----------------------------------------------------------------
USER_FILES = {
    "movielens-csv.csv": "userId,movieId,rating,timestamp\n1,10,4.0,100\n2,20,3.5,200\n1,20,5,300\n",
    "plain.csv": "user,item,score,time\n1,10,4,100\n2,20,3.5,200\n1,20,5,300\n",
    "snake.csv": "user_id,movie_id,rating,timestamp\n1,10,4,100\n2,20,3.5,200\n1,20,5,300\n",
    "spaced.csv": "User ID, Movie ID, Stars, Unixtime\n1, 10, 4, 100\n2, 20, 3.5, 200\n1, 20, 5, 300\n",
    "tabs.tsv": "user_id\titem_id\trating\tts\n1\t10\t4\t100\n2\t20\t3.5\t200\n1\t20\t5\t300\n",
    "tabs.txt": "userId\tmovieId\trating\ttimestamp\n1\t10\t4\t100\n2\t20\t3.5\t200\n1\t20\t5\t300\n",
    "headerless.csv": "1,10,4,100\n2,20,3.5,200\n1,20,5,300\n",
    "headerless.tsv": "1\t10\t4\t100\n2\t20\t3.5\t200\n1\t20\t5\t300\n",
    "u.data": "1\t10\t4\t100\n2\t20\t3.5\t200\n1\t20\t5\t300\n",
    "ratings.dat": "1::10::4::100\n2::20::3.5::200\n1::20::5::300\n",
    "crlf.csv": "userId,movieId,rating,timestamp\r\n1,10,4,100\r\n2,20,3.5,200\r\n1,20,5,300\r\n",
}


@pytest.mark.parametrize("fname", list(USER_FILES))
def test_user_file_formats(tmp_path, fname):
    path = tmp_path / fname
    path.write_text(USER_FILES[fname])
    ds = load_ratings(path)
    check_dtypes(ds)
    assert list(ds.users.raw_ids) == [1, 2] and list(ds.items.raw_ids) == [10, 20]
    assert by_raw(ds, 1, 10) == 4.0 and by_raw(ds, 2, 20) == 3.5 and by_raw(ds, 1, 20) == 5.0
    assert ds.has_timestamps and sorted(ds.timestamp.tolist()) == [100, 200, 300]


def test_user_file_without_timestamps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,10,4\n2,20,3\n")
    ds = load_ratings(path)
    assert not ds.has_timestamps and ds.timestamp.tolist() == [0, 0]


def test_given_column_names(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("who,what,how_much,when,extra\nu1,m1,4,100,x\nu2,m1,2,200,y\n")
    ds = load_ratings(path, user_col="who", item_col="what", rating_col="how_much", time_col="when")
    assert list(ds.users.raw_ids) == ["u1", "u2"] and by_raw(ds, "u2", "m1") == 2.0
    assert ds.timestamp.tolist() == [100, 200]


def test_string_ids(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\nalice,tt0114709,5\nbob,tt0113497,3\nalice,tt0113497,4\n")
    ds = load_ratings(path)
    check_dtypes(ds)
    assert list(ds.users.raw_ids) == ["alice", "bob"]
    assert list(ds.items.raw_ids) == ["tt0113497", "tt0114709"]
    assert by_raw(ds, "alice", "tt0113497") == 4.0


def test_date_string_timestamps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "user,item,rating,date\n1,10,4,2020-01-01\n2,10,3,2021-05-03 10:00:00\n3,10,2,2022-02-03T04:05:06Z\n"
    )
    ds = load_ratings(path)
    expected = pd.to_datetime(["2020-01-01", "2021-05-03 10:00:00", "2022-02-03 04:05:06"], utc=True, format="mixed")
    assert ds.timestamp.tolist() == [int(t.timestamp()) for t in expected]


@pytest.mark.parametrize("variant", ["movielens", "scores", "string-ids", "datetime"])
def test_parquet(tmp_path, variant):
    frames = {
        "movielens": pd.DataFrame({"userId": [1, 2, 1], "movieId": [10, 20, 20], "rating": [4.0, 3.5, 5.0],
                                   "timestamp": [100, 200, 300]}),
        "scores": pd.DataFrame({"user": [1, 2, 1], "item": [10, 20, 20], "score": [4, 3.5, 5]}),
        "string-ids": pd.DataFrame({"user_id": ["a", "b", "a"], "movie_id": ["x", "y", "y"],
                                    "rating": [4.0, 3.5, 5.0]}),
        "datetime": pd.DataFrame({"user": [1, 2, 1], "item": [10, 20, 20], "rating": [4.0, 3.5, 5.0],
                                  "time": pd.to_datetime(["1970-01-01 00:01:40", "1970-01-01 00:03:20",
                                                          "1970-01-01 00:05:00"])}),
    }
    path = tmp_path / "r.parquet"
    frames[variant].to_parquet(path)
    ds = load_ratings(path)
    check_dtypes(ds)
    assert ds.n_ratings == 3 and ds.n_users == 2 and ds.n_items == 2
    assert sorted(ds.rating.tolist()) == [3.5, 4.0, 5.0]
    if variant in ("movielens", "datetime"):
        assert ds.timestamp.tolist() == [100, 200, 300]


def test_rating_range_accepts_in_range(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,10,1\n2,10,5\n")
    assert load_ratings(path, rating_range=(1, 5)).n_ratings == 2
