"""A new person's likes and dislikes, read right by every model (`Recommender.fold_in`).

On full ML-100K, at each model's defaults (two-tower: the tuned ML-100K config, 5 epochs
without early stopping, to keep this module fast): a person who gives five movies of one
kind 5 stars and four of another 1 star must not be steered towards the second kind.
Their top 10 shares no more movies with the top 10 of someone who gave the second kind
5 stars than the top 10 from the five liked movies alone does. Two independent cases:
science fiction liked / romance disliked, and comedy liked / horror disliked.

Measured when written (liked alone vs liked + disliked, overlap with the disliked kind's
list; before the change in brackets): ease 1 vs 1 and 1 vs 0 (3 and 5), seq-ease 1 vs 1
and 1 vs 0 (4 and 5), als 0 vs 0 twice (2 and 3), item-knn 0 vs 0 twice, mf 9 vs 1 and
7 vs 0, two-tower 0 vs 0 twice (1 and 8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movierec.errors import ConfigError, NoLikedMoviesError
from movierec.models import available, create, get_class

ROOT = Path(__file__).resolve().parents[1]

#: (liked movies, disliked movies), ML-100K movie IDs
CASES = {
    # Star Wars, Empire Strikes Back, Alien, Terminator, Terminator 2 /
    # While You Were Sleeping, Sleepless in Seattle, Four Weddings and a Funeral, Sense and Sensibility
    "scifi-not-romance": ([50, 172, 183, 195, 96], [88, 66, 70, 255]),
    # Monty Python and the Holy Grail, The Full Monty, The Birdcage, Raising Arizona, Liar Liar /
    # The Shining, The Birds, Carrie, Psycho
    "comedy-not-horror": ([168, 269, 25, 238, 294], [200, 443, 447, 185]),
}
MODELS = ["ease", "seq-ease", "als", "item-knn", "mf", "two-tower"]

#: the declared choice of every model that folds in a new person (see each model's docstring)
WITH_DISLIKES = {"ease", "seq-ease", "item-knn", "mf", "two-tower", "bias", "bpmf", "ranker"}
WITHOUT_DISLIKES = {"als", "als-spark", "bpr", "mf-rank", "genre-pop", "pop", "pop-recent"}


def _params(name: str) -> dict:
    if name != "two-tower":
        return {}
    tuned = json.loads((ROOT / "configs" / "tuned" / "ml-100k" / "loo" / "two-tower.json").read_text())["params"]
    return {**tuned, "epochs": 5, "patience": 0}


@pytest.fixture(scope="module")
def fitted(ml100k):
    """name -> the model fitted on all of ML-100K, fitted on first use."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = create(name, **_params(name)).fit(ml100k)
        return cache[name]

    return get


def _top(model, ids, ratings) -> set:
    return set(model.recommend_new(ids, ratings, k=10).items_of(0).tolist())


def test_every_fold_in_model_declares_its_choice():
    fold_in = {n for n in available() if get_class(n).capabilities.fold_in}
    assert fold_in == WITH_DISLIKES | WITHOUT_DISLIKES, "a model that folds in people must be listed here"
    assert {n for n in fold_in if get_class(n).capabilities.dislikes} == WITH_DISLIKES


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", MODELS)
def test_disliked_kind_does_not_pull_the_list_towards_it(name, case, fitted):
    model = fitted(name)
    liked, disliked = CASES[case]
    alone = _top(model, liked, [5] * len(liked))
    both = _top(model, liked + disliked, [5] * len(liked) + [1] * len(disliked))
    other = _top(model, disliked, [5] * len(disliked))
    assert len(both & other) <= len(alone & other), (
        f"{name}: disliking {disliked} put {len(both & other)} of the movies liked with them into the top 10, "
        f"against {len(alone & other)} from the liked movies alone")
    assert not both & set(liked + disliked)  # every movie given is left out, liked or not
    if not model.capabilities.dislikes:  # dropped: the same list as the liked movies alone
        assert both == alone


def test_ease_penalty_is_the_rows_of_the_disliked_movies(fitted):
    """EASE scores liked movies' rows of B minus DISLIKE_WEIGHT times the disliked ones'."""
    model = fitted("ease")
    liked, disliked = CASES["scifi-not-romance"]
    mixed = model.fold_in(liked + disliked, [5] * 5 + [1] * 4).scores.astype(np.float64)
    expected = model.fold_in(liked).scores.astype(np.float64) - model.DISLIKE_WEIGHT * model.fold_in(disliked).scores
    np.testing.assert_allclose(mixed, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["mf", "two-tower"])
def test_index_answers_a_person_with_dislikes_from_the_vector(name, fitted):
    """The new person's vector carries the dislikes, so an exact vector index answers as
    `recommend_new`; liked_threshold reaches the model through the index."""
    from movierec.retrieval import ModelIndex

    model = fitted(name)
    index = ModelIndex.build(model, "exact")
    liked, disliked = CASES["comedy-not-horror"]
    ids, ratings = liked + disliked, [5] * 5 + [1] * 4
    for threshold in (None, 1.0):
        ref = model.recommend_new(ids, ratings, k=10, liked_threshold=threshold).items_of(0)
        got = index.recommend_new(ids, ratings, k=10, liked_threshold=threshold).items_of(0)
        assert got.tolist() == ref.tolist(), f"{name}: liked_threshold={threshold}"
    with pytest.raises(ConfigError, match="The liked threshold must lie on the model.s rating scale"):
        index.recommend_new(ids, ratings, k=10, liked_threshold=9)


def test_only_disliked_movies(fitted):
    """A model with dislikes answers a person who disliked everything given; one without
    raises NoLikedMoviesError, with the threshold in its sentence."""
    _, disliked = CASES["comedy-not-horror"]
    rec = fitted("ease").recommend_new(disliked, [1, 2, 1, 3], k=10)
    assert len(rec.items_of(0)) == 10
    with pytest.raises(NoLikedMoviesError, match=r"rated 3\.5 or more, and model 'als'"):
        fitted("als").recommend_new(disliked, [1, 2, 1, 3], k=10)
