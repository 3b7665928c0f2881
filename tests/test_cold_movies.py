"""The cold-movie protocol (evaluation.cold_movies), its wiring into compare, and genre-pop."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import ConfigError
from movierec.evaluation.cold_movies import (
    cold_candidates,
    cold_movie_split,
    evaluate_cold,
    validation_candidates,
)
from movierec.evaluation.protocols import build_splits
from movierec.experiments import CompareSpec, compare, protocol_key
from movierec.models import create


@pytest.fixture(scope="module")
def cold(ml100k):
    return cold_movie_split(ml100k, 0.1, seed=0, validation=True)


def _idx(ds, raw):
    return ds.items.lookup(np.asarray(raw))


def test_cold_movies_are_absent_from_train_and_all_their_ratings_are_in_test(ml100k, cold):
    test_cold = _idx(ml100k, cold.info["cold_items"])
    val_cold = _idx(ml100k, cold.info["validation_cold_items"])
    rated = np.flatnonzero(ml100k.item_counts())
    assert len(test_cold) == round(0.1 * len(rated)) and len(val_cold) == len(test_cold)
    assert not np.intersect1d(test_cold, val_cold).size
    # nothing of a cold movie in train; every rating of a test cold movie in test, and nothing else
    assert not np.isin(cold.train.item_idx, np.concatenate([test_cold, val_cold])).any()
    assert np.isin(cold.test.item_idx, test_cold).all()
    assert np.isin(cold.validation.item_idx, val_cold).all()
    assert cold.test.n_ratings == int(ml100k.item_counts()[test_cold].sum())
    assert cold.validation.n_ratings == int(ml100k.item_counts()[val_cold].sum())
    assert cold.train.n_ratings + cold.validation.n_ratings + cold.test.n_ratings == ml100k.n_ratings
    # shared IdMaps: cold movies keep their index and metadata
    assert cold.train.items is ml100k.items and cold.test.items is ml100k.items
    assert cold.train.catalog is ml100k.catalog
    # train + validation is what compare refits on: the validation cold movies are warm there
    assert np.isin(val_cold, cold.train_full().item_idx).all()
    assert not np.isin(test_cold, cold.train_full().item_idx).any()


def test_the_split_is_deterministic_per_seed(ml100k, cold):
    again = cold_movie_split(ml100k, 0.1, seed=0, validation=True)
    assert again.info["cold_items"] == cold.info["cold_items"]
    assert again.test.fingerprint() == cold.test.fingerprint()
    assert again.train.fingerprint() == cold.train.fingerprint()
    other = cold_movie_split(ml100k, 0.1, seed=1, validation=True)
    assert other.info["cold_items"] != cold.info["cold_items"]


def test_users_without_training_history_are_dropped_not_cold_movies(ml100k):
    # a user whose every rating is of a cold movie has no history to rank for
    sub = ml100k.subset(ml100k.user_idx < 200)
    plain = cold_movie_split(sub, 0.3, seed=3, drop_unseen_users=False)
    lonely = np.setdiff1d(plain.test.user_idx, plain.train.user_idx)
    split = cold_movie_split(sub, 0.3, seed=3)
    assert split.info["dropped"]["test_unseen_users"] == len(lonely)
    assert "test_unseen_item_ratings" not in split.info["dropped"]
    assert not np.isin(split.test.user_idx, lonely).any()
    kept = ~np.isin(plain.test.user_idx, lonely)
    assert split.test.n_ratings == int(kept.sum()) > 0


def test_bad_fractions_are_config_errors(ml100k):
    for bad in (0, 0.5, -0.1, 1.2):
        with pytest.raises(ConfigError):
            cold_movie_split(ml100k, bad)
    with pytest.raises(ConfigError):
        build_splits(ml100k, "cold-movies", holdout=0.7)


def test_protocol_dispatch_and_config_key(ml100k):
    [split] = build_splits(ml100k, "cold-movies", holdout=0.05, seed=7)
    assert split.info["protocol"] == "cold-movies" and split.info["n_cold_items"] == round(0.05 * 1682)
    assert split.validation is not None
    assert split.test.n_ratings == int(ml100k.item_counts()[cold_candidates(split)].sum())
    assert protocol_key("cold-movies") == "cold" and protocol_key("cold-movies", 0.2) == "cold"


def test_rankings_hold_only_cold_movies(cold):
    model = create("pop").fit(cold.train_full())
    res = evaluate_cold(model, cold, ks=(20,))
    allowed = cold_candidates(cold)
    recs = res.recommendations[res.recommendations >= 0]
    assert allowed[recs].all()
    # test users: exactly those with a rating >= 4 of a cold movie
    assert res.info["n_evaluated_users"] == len(np.unique(cold.test.user_idx[cold.test.rating >= 4]))
    val = evaluate_cold(create("pop").fit(cold.train), cold, ks=(20,), part="validation")
    vrecs = val.recommendations[val.recommendations >= 0]
    assert validation_candidates(cold)[vrecs].all() and not allowed[vrecs].any()


def test_compare_ranks_only_cold_movies(tmp_path):
    comp = compare(CompareSpec(dataset="ml-100k", protocol="cold-movies", models=["random", "genre-pop"], ks=[20],
                               metrics=["recall", "ndcg", "hr"], config_root=tmp_path))
    assert comp.info["protocol"] == "cold-movies" and comp.info["candidates"] == "shared candidate mask"
    ids = set(comp.info["split"]["cold_items"])
    items = next(iter(comp.results.values()))
    for res in comp.results.values():
        recs = res.recommendations[res.recommendations >= 0]
        assert set(items.per_user.index) == set(res.per_user.index)
        from movierec.data import load_movielens

        raw = load_movielens("ml-100k").items.raw(recs)
        assert set(raw.tolist()) <= ids
    summary = comp.summary_frame()
    assert summary.loc["genre-pop", "recall@20"] > 1.5 * summary.loc["random", "recall@20"]
    with pytest.raises(ConfigError):
        compare(CompareSpec(dataset="ml-100k", protocol="cold-movies", models=["random"], sampled_negatives=50,
                            config_root=tmp_path))


def test_cli_compare_cold_movies(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--dataset", "ml-100k", "--protocol", "cold-movies", "--models",
                                      "random,genre-pop", "-k", "20", "--metrics", "recall,ndcg", "--json",
                                      "--config-dir", str(tmp_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["protocol"] == "cold-movies" and doc["split"]["n_cold_items"] == 168
    bad = CliRunner().invoke(app, ["compare", "--dataset", "ml-100k", "--protocol", "cold-movies", "--holdout", "0.9",
                                   "--models", "random", "--config-dir", str(tmp_path)])
    assert bad.exit_code == 1 and isinstance(bad.exception, ConfigError)
    assert "share of the movies" in str(bad.exception)


# -- genre-pop -------------------------------------------------------------------------


def _genre(ds, name):
    return ds.catalog.genre_matrix[:, ds.catalog.genre_names.index(name)].astype(bool)


def test_genre_pop_follows_a_persons_genres(ml100k, cold):
    # genre match alone (no popularity, no smoothing): a horror fan's top cold movies are horror
    model = create("genre-pop", pop_weight=0.0, smoothing=0.0).fit(cold.train)
    cands = cold.info["cold_items"]
    cold_mask = cold_candidates(cold)
    warm = cold.train.item_counts() > 0
    one_genre = ml100k.catalog.genre_matrix.sum(axis=1) == 1
    horror, kids = _genre(ml100k, "Horror"), _genre(ml100k, "Children's")
    liked_horror = ml100k.items.raw(np.flatnonzero(horror & warm & one_genre)[:15])
    liked_kids = ml100k.items.raw(np.flatnonzero(kids & warm & one_genre)[:15])
    n_h, n_k = int((horror & cold_mask).sum()), int((kids & cold_mask).sum())
    assert n_h >= 3 and n_k >= 3
    top_h = _idx(ml100k, model.recommend_new(liked_horror, k=n_h, candidates=cands).item_ids[0])
    top_k = _idx(ml100k, model.recommend_new(liked_kids, k=n_k, candidates=cands).item_ids[0])
    assert horror[top_h].all() and not horror[top_k].any()
    assert kids[top_k].all()
    # with its default popularity term it still puts the person's genre first
    default = create("genre-pop").fit(cold.train)
    assert horror[_idx(ml100k, default.recommend_new(liked_horror, k=3, candidates=cands).item_ids[0])].all()


def test_genre_pop_gives_unrated_movies_the_popularity_of_their_genres(ml100k, cold):
    model = create("genre-pop", smoothing=0.0).fit(cold.train)
    counts = cold.train.item_counts()
    cold_idx = _idx(ml100k, cold.info["cold_items"])
    assert (counts[cold_idx] == 0).all()
    pop = model.pop_
    # rated movies: log-popularity; the most rated movie scores 1
    assert pop[np.argmax(counts)] == pytest.approx(1.0)
    rated = counts > 0
    single = ml100k.catalog.genre_matrix.sum(axis=1) == 1
    for g, name in enumerate(ml100k.catalog.genre_names):
        members = rated & (ml100k.catalog.genre_matrix[:, g] == 1)
        these = cold_idx[single[cold_idx] & (ml100k.catalog.genre_matrix[cold_idx, g] == 1)]
        if members.any() and len(these):
            assert np.allclose(pop[these], pop[members].mean()), name
    # with popularity dominating, a person's top unrated movie is the one of the most popular genres
    ranked = create("genre-pop", pop_weight=1e6).fit(cold.train)
    top = _idx(ml100k, ranked.recommend_new(ml100k.items.raw([0]), k=1, candidates=cold.info["cold_items"]).item_ids[0])
    assert pop[top[0]] == pytest.approx(pop[cold_idx].max())


def test_genre_pop_scores_are_its_embeddings_dot_product(cold):
    model = create("genre-pop").fit(cold.train)
    emb = model.embeddings()
    users = np.arange(0, cold.train.n_users, 97)
    np.testing.assert_allclose(emb.users[users] @ emb.items.T, model._score(users), rtol=1e-5, atol=1e-6)


def test_genre_pop_beats_random_on_cold_movies(cold):
    """Band from baselines measured in the same run: genre-pop ranks cold movies from metadata."""
    rec = {name: evaluate_cold(create(name, **({"seed": 0} if name == "random" else {})).fit(cold.train_full()),
                               cold, ks=(20,)).summary["recall@20"] for name in ("random", "genre-pop")}
    assert rec["genre-pop"] > 1.5 * rec["random"], rec


@pytest.mark.slow
def test_two_tower_ranks_cold_movies_from_metadata(ml100k):
    """Two-tower (a few epochs) ranks movies it never saw a rating of: well above random
    order and within a band of genre-pop, both measured in the same run (issue 10's
    1.5x target is measured, at full budget, by benchmarks/cold_movies.py)."""
    from movierec.testing.contract import MODEL_CASES

    split = cold_movie_split(ml100k, 0.1, seed=0)
    recall = {name: evaluate_cold(create(name, **params).fit(split.train), split, ks=(20,)).summary["recall@20"]
              for name, params in (("random", {"seed": 0}), ("genre-pop", {}),
                                   ("two-tower", MODEL_CASES["two-tower"]))}
    assert recall["two-tower"] > 1.5 * recall["random"], recall
    assert recall["two-tower"] > 0.8 * recall["genre-pop"], recall


def test_tuning_on_the_cold_protocol_ranks_only_validation_cold_movies(ml100k):
    from movierec.experiments import tune, tuning_split
    from movierec.experiments.tune import validation_score

    split = tuning_split(ml100k, "cold-movies", seed=5)
    assert np.isin(split.validation.item_idx, validation_candidates(split).nonzero()[0]).all()
    cfg = tune("genre-pop", split, metric="recall@20", trials=2, seed=0, relevance_threshold=4.0)
    model = create("genre-pop", **cfg.params).fit(split.train)
    cold_only = validation_score(model, split.train, split.validation, "recall@20", 4.0, validation_candidates(split))
    assert cfg.validation["recall@20"] == pytest.approx(cold_only["recall@20"])
    everything = validation_score(model, split.train, split.validation, "recall@20", 4.0)
    assert everything["recall@20"] < cold_only["recall@20"]
