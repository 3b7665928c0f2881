"""Taste groups (`movierec.answers.onboarding`, GET /onboarding and the page's first visit) on
the real ML-100K, for a model with embeddings (ALS) and one without (EASE: co-occurrence
vectors): distinct groups, the tastes a first visitor looks for, and labels that say what the
shown movies are.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from movierec.answers import DEFAULT_GROUPS, Answerer
from movierec.answers.onboarding import taste_groups
from movierec.artifacts.train import train

TOY_STORY = 1


@pytest.fixture(scope="module", params=["ease", "als"])
def answerer(request, ml100k) -> Answerer:
    return Answerer(train(request.param, ml100k, seed=0))


def label_genres(group) -> list[str]:
    """The genres a group's label names ("Children's & Animation" -> both)."""
    return group.label.split(" & ")


def movie_genres(answerer: Answerer, group) -> list[set[str]]:
    return [set(answerer.movies[i].genres) for i in group.movie_idx.tolist()]


@pytest.mark.parametrize("n_groups", [DEFAULT_GROUPS, 20])
def test_no_two_groups_lead_with_the_same_genres(answerer, n_groups):
    groups = answerer.groups(n_groups)
    assert len(groups) == n_groups
    labels = [frozenset(label_genres(g)) for g in groups]
    leading = [frozenset(g.genres[:2]) for g in groups]
    assert len(set(labels)) == n_groups, [g.label for g in groups]
    assert len(set(leading)) == n_groups, [g.genres for g in groups]
    for g in groups:  # the label names the group's first genres, nothing else
        assert label_genres(g) == g.genres[: len(label_genres(g))], (g.label, g.genres)
    shown = np.concatenate([g.movie_idx for g in groups])
    assert len(set(shown.tolist())) == len(shown)  # no movie shown in two groups


def test_the_page_offers_comedy_childrens_animation_and_science_fiction(answerer):
    named = [set(label_genres(g)) for g in answerer.groups(DEFAULT_GROUPS)]
    assert any("Comedy" in n for n in named), named
    assert any(n & {"Children's", "Animation"} for n in named), named
    assert any("Sci-Fi" in n for n in named), named


@pytest.mark.parametrize("n_groups", [DEFAULT_GROUPS, 20])
def test_each_label_names_genres_most_of_its_movies_have(answerer, n_groups):
    for g in answerer.groups(n_groups):
        have = movie_genres(answerer, g)
        assert len(have) >= 1
        for genre in g.genres:  # the label's genres and the extra ones alike
            holders = sum(genre in h for h in have)
            assert 2 * holders > len(have), (g.label, g.genres, genre, have)


def test_toy_story_is_shown_under_genres_it_has(answerer):
    """Toy Story (Animation, Children's, Comedy) was once shown as "Action & Thriller"."""
    toy_story = answerer.movie(TOY_STORY)
    found = [g for n in (DEFAULT_GROUPS, 20) for g in answerer.groups(n) if TOY_STORY in
             answerer.item_ids[g.movie_idx].tolist()]
    assert found, "Toy Story is not shown in any group"
    for g in found:
        assert set(label_genres(g)) <= set(toy_story.genres), (g.label, toy_story.genres)


def test_groups_are_seeded_and_fewer_groups_are_the_first_ones(answerer):
    again = taste_groups(answerer.model, answerer.catalog, answerer.counts, DEFAULT_GROUPS)
    first = answerer.groups(DEFAULT_GROUPS)
    assert [(g.label, g.genres, g.movie_idx.tolist()) for g in again] == \
        [(g.label, g.genres, g.movie_idx.tolist()) for g in first]
    assert [g.label for g in answerer.groups(4)] == [g.label for g in first[:4]]


def test_without_genres_groups_are_named_after_a_movie(answerer):
    n = len(answerer.catalog.titles)
    bare = replace(answerer.catalog, genres=[[] for _ in range(n)], genre_names=[],
                   genre_matrix=np.zeros((n, 0), dtype=np.uint8))
    groups = taste_groups(answerer.model, bare, answerer.counts, 6)
    assert len(groups) == 6 and [g.group_id for g in groups] == list(range(6))
    for g in groups:
        assert g.genres == [] and g.label == f"Like {bare.display_label(int(g.movie_idx[0]))}"
    assert len({g.label for g in groups}) == 6
    shown = np.concatenate([g.movie_idx for g in groups])
    assert len(set(shown.tolist())) == len(shown)
