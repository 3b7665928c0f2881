"""The answer layer (`movierec.answers`): one query in, one answer out, for the CLI and the service.

Known users, new people (likes, dislikes, unknown movies, fallbacks), similar movies,
candidate filters, the re-ranking hook and every refusal's sentence, on bundles trained
on the full ML-100K.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.answers import (
    Answerer,
    Filters,
    KnownUser,
    NewPerson,
    Query,
    RerankInput,
    SimilarTo,
)
from movierec.artifacts.train import train
from movierec.errors import ConfigError, UnknownItemError, UnknownUserError

SCIFI = [50, 172, 183, 195, 96]  # Star Wars, Empire, Alien, Terminator, T2
ROMANCE = [88, 66, 70, 255]  # Sleepless in Seattle, While You Were Sleeping, Four Weddings, My Best Friend's Wedding


@pytest.fixture(scope="module")
def ease(ml100k):
    return train("ease", ml100k, seed=0)


@pytest.fixture(scope="module")
def answerer(ease):
    return Answerer(ease)


def ids(answer) -> list:
    return answer.movie_ids


# -- known users ---------------------------------------------------------------------------
def test_known_user_is_the_models_own_list_with_rows_and_reasons(ease, answerer, ml100k):
    answer = answerer.answer(Query(KnownUser(42), k=10))
    own = ease.model.recommend([42], k=10)
    assert ids(answer) == own.items_of(0).tolist()
    np.testing.assert_allclose([r.score for r in answer.rows], own.scores[0], rtol=1e-6)
    assert not answer.fallback and answer.user_id == 42
    seen = set(ml100k.items.raw_ids[ml100k.item_idx[ml100k.user_idx == ml100k.users.index_of(42)]].tolist())
    assert not set(ids(answer)) & seen
    counts = dict(zip(ml100k.items.raw_ids.tolist(), ml100k.item_counts().tolist()))
    for row in answer.rows:
        assert row.movie.title and row.movie.year and row.movie.genres
        assert row.movie.n_ratings == counts[row.movie.movie_id]
        assert row.reason.startswith("Because you rated ")
    # each reason names one of the user's own movies
    titles = {answerer.catalog.display_label(int(i)) for i in ease.model.items_.lookup(list(seen))}
    assert all(any(t in row.reason for t in titles) for row in answer.rows)


def test_ids_typed_as_text_are_read_as_the_models(answerer):
    assert ids(answerer.answer(Query(KnownUser("42"), k=5))) == ids(answerer.answer(Query(KnownUser(42), k=5)))
    assert ids(answerer.answer(Query(SimilarTo("50"), k=5))) == ids(answerer.answer(Query(SimilarTo(50), k=5)))


def test_include_seen_and_batches_agree_with_single_queries(answerer):
    users = [1, 2, 42, 500]
    query = Query(KnownUser(0), k=7)
    assert [ids(a) for a in answerer.answer_users(users, query)] == \
        [ids(answerer.answer(Query(KnownUser(u), k=7))) for u in users]
    with_seen = answerer.answer(Query(KnownUser(42), k=50, exclude_seen=False))
    without = answerer.answer(Query(KnownUser(42), k=50))
    assert set(ids(with_seen)) != set(ids(without))


def test_unknown_user_says_what_to_do(answerer):
    with pytest.raises(UnknownUserError) as err:
        answerer.answer(Query(KnownUser(99999)))
    assert str(err.value) == ("Unknown user ID: 99999 (not among the 943 users the model was trained on); for "
                              "someone new, recommend from the movies they rated or liked.")
    with pytest.raises(UnknownUserError, match="Unknown user IDs: 99999, 'newbie'"):
        answerer.answer_users([1, 99999, "newbie"], Query(KnownUser(1)))


# -- filters -------------------------------------------------------------------------------
def test_filters_restrict_every_kind_of_answer(answerer):
    counts = {m.movie_id: m.n_ratings for m in answerer.movies}
    genres = {m.movie_id: m.genres for m in answerer.movies}
    for subject in (KnownUser(42), NewPerson(liked=(1, 71, 95)), SimilarTo(50)):
        plain = answerer.answer(Query(subject, k=20))
        assert min(counts[m] for m in ids(plain)) < 300
        popular = answerer.answer(Query(subject, k=20, filters=Filters(min_ratings=300)))
        assert len(popular.rows) >= 10 and min(counts[m] for m in ids(popular)) >= 300
        comedy = answerer.answer(Query(subject, k=10, filters=Filters(genres=("comedy", "scifi"))))
        assert all({"Comedy", "Sci-Fi"} & set(genres[m]) for m in ids(comedy))
        denied = answerer.answer(Query(subject, k=10, filters=Filters(deny=tuple(ids(plain)[:3]) + (99999,))))
        assert not set(denied.movie_ids) & set(ids(plain)[:3]) and len(denied.rows) == 10
        allowed = answerer.answer(Query(subject, k=10, filters=Filters(allow=(1, 2, 3, 50, 181))))
        assert set(ids(allowed)) <= {1, 2, 3, 50, 181}


@pytest.mark.parametrize("filters, error, sentence", [
    (Filters(genres=("Space Opera",)), ConfigError, "Unknown genre 'Space Opera'; the genres are: Action, "),
    (Filters(min_ratings=5000), ConfigError,
     "No movie passes the filters (5000+ ratings; the most rated movie has 583); loosen them."),
    (Filters(allow=(1, 99999)), UnknownItemError, "Unknown movie ID: 99999."),
    (Filters(min_ratings=500, genres=("Documentary",)), ConfigError,
     "No movie passes the filters (500+ ratings, genre Documentary); loosen them."),
])
def test_filters_that_cannot_be_met_are_refused_in_one_sentence(answerer, filters, error, sentence):
    with pytest.raises(error) as err:
        answerer.answer(Query(KnownUser(42), filters=filters))
    assert str(err.value).startswith(sentence)


@pytest.mark.parametrize("make, sentence", [
    (lambda: Query(KnownUser(1), k=0), "k must be a whole number from 1 to 1000, got 0."),
    (lambda: Query(KnownUser(1), k=1001), "k must be a whole number from 1 to 1000, got 1001."),
    (lambda: Query(KnownUser(1), k=True), "k must be a whole number from 1 to 1000, got True."),
    (lambda: Filters(min_ratings=-1), "min_ratings must be a whole number of 0 or more, got -1."),
    (lambda: Filters(allow=()), "The allow list is empty, so no movie could be answered; leave it out instead."),
    (lambda: Query(KnownUser(1), liked_threshold=float("nan")), "The liked threshold must be a finite number"),
    (lambda: NewPerson(rated=((50, float("inf")),)), "The rating of movie 50 must be a finite number, got inf."),
    (lambda: NewPerson(liked=tuple(range(501))), "Give at most 500 movies for a new person."),
])
def test_bad_queries_are_refused_when_made(make, sentence):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value).startswith(sentence)


# -- similar movies ----------------------------------------------------------------------
def test_similar_movies_are_the_models_and_never_the_movie_itself(ease, answerer):
    answer = answerer.answer(Query(SimilarTo(50), k=10))
    assert answer.kind == "similar" and answer.movie.title == "Star Wars" and not answer.fallback
    assert ids(answer) == ease.model.similar_items([50], k=10).items_of(0).tolist()
    assert 50 not in ids(answer)
    assert all(r.reason == "Liked by people who liked Star Wars (1977)" for r in answer.rows)
    with pytest.raises(UnknownItemError, match="Unknown movie ID: 99999."):
        answerer.answer(Query(SimilarTo(99999)))


def test_similar_falls_back_to_genres_for_a_model_that_cannot_tell(ml100k):
    pop = Answerer(train("pop", ml100k, seed=0))
    answer = pop.answer(Query(SimilarTo(1), k=10))  # Toy Story: Animation, Children's, Comedy
    assert answer.fallback and "cannot tell which movies are alike" in answer.fallback_reason
    assert 1 not in ids(answer)
    assert all(r.reason.startswith("Also ") for r in answer.rows)


# -- new people ----------------------------------------------------------------------------
def test_a_new_person_from_liked_movies(answerer):
    answer = answerer.answer(Query(NewPerson(liked=(50, 172, 99999)), k=10))
    assert not answer.fallback and answer.ignored == (99999,) and set(answer.liked) == {50, 172}
    assert not {50, 172} & set(ids(answer))
    assert all(r.reason in ("Because you liked Star Wars (1977)", "Because you liked The Empire Strikes Back (1980)")
               for r in answer.rows if r.reason)


def test_nothing_known_or_a_model_without_fold_in_falls_back_flagged(answerer, ml100k):
    answer = answerer.answer(Query(NewPerson(liked=(99998, 99999)), k=5))
    assert answer.fallback and answer.fallback_reason == "No movie the model knows was given."
    assert answer.ignored == (99998, 99999) and len(answer.rows) == 5
    assert all(r.reason == "Popular with everyone" for r in answer.rows)
    gm = Answerer(train("global-mean", ml100k, seed=0))
    answer = gm.answer(Query(NewPerson(rated=((1, 5), (71, 5), (95, 5))), k=10))  # three Disney films
    assert answer.fallback and answer.fallback_reason.startswith("Model 'global-mean' cannot recommend for a new "
                                                                 "person without retraining; models that can: ")
    assert not {1, 71, 95} & set(ids(answer))
    assert sum("Children's" in r.reason or "Animation" in r.reason for r in answer.rows if r.reason.startswith(
        "Popular in")) >= 3  # the fallback leans to the genres given


def test_ratings_outside_the_models_scale_are_refused(answerer):
    with pytest.raises(ConfigError) as err:
        answerer.answer(Query(NewPerson(rated=((50, 9),))))
    assert str(err.value) == "Ratings must lie in [1, 5], the model's scale; got 9 for movie 50."
    with pytest.raises(ConfigError, match=r"The liked threshold must lie on the model's rating scale \[1, 5\], got 7."):
        answerer.answer(Query(NewPerson(rated=((50, 5),)), liked_threshold=7))


def test_dislikes_are_never_more_like_this_nor_a_reason(answerer):
    titles = {answerer.catalog.display_label(int(i)) for i in answerer.movie_index(ROMANCE)}
    scifi = answerer.answer(Query(NewPerson(rated=tuple((m, 5) for m in SCIFI)), k=10))
    both = answerer.answer(Query(NewPerson(rated=tuple((m, 5) for m in SCIFI) + tuple((m, 1) for m in ROMANCE)), k=10))
    romance = answerer.answer(Query(NewPerson(rated=tuple((m, 5) for m in ROMANCE)), k=10))
    assert set(both.disliked) == set(ROMANCE) and set(both.liked) == set(SCIFI) and both.liked_threshold == 3.5
    assert len(set(ids(both)) & set(ids(romance))) <= len(set(ids(scifi)) & set(ids(romance)))
    assert not set(ROMANCE) & set(ids(both))  # given movies are never answered
    assert not any(t in (r.reason or "") for r in both.rows for t in titles)
    # a lower threshold makes the 1-star films... still dislikes; a threshold of 1 makes them likes
    liked_all = answerer.answer(Query(NewPerson(rated=((50, 5), (88, 1))), k=10, liked_threshold=1))
    assert set(liked_all.liked) == {50, 88} and not liked_all.disliked


def test_only_dislikes_fall_back_away_from_their_genres_for_models_that_drop_them(ml100k):
    als = Answerer(train("als", ml100k, seed=0))
    answer = als.answer(Query(NewPerson(rated=tuple((m, 1) for m in ROMANCE)), k=10))
    assert answer.fallback and "learns only from movies a person likes" in answer.fallback_reason
    assert set(answer.disliked) == set(ROMANCE) and not answer.liked
    assert all("Romance" not in r.movie.genres or r.movie.n_ratings > 400 for r in answer.rows)
    assert not any((r.reason or "").startswith("Popular in Romance") for r in answer.rows)


# -- re-ranking hook -----------------------------------------------------------------------
class Reverse:
    """A toy re-ranker: the pool's last k, worst first (easy to check)."""

    name = "reverse"

    def __init__(self):
        self.seen: list[RerankInput] = []

    def pool(self, k: int) -> int:
        return 3 * k

    def rerank(self, candidates: RerankInput) -> np.ndarray:
        self.seen.append(candidates)
        return np.arange(len(candidates.item_idx))[::-1][: candidates.k]


def test_the_rerank_hook_sees_a_longer_list_and_orders_the_answer(answerer):
    hook = Reverse()
    for subject in (KnownUser(42), NewPerson(liked=(1, 71)), SimilarTo(50)):
        longer = answerer.answer(Query(subject, k=15))
        reranked = answerer.answer(Query(subject, k=5, rerank=hook))
        assert ids(reranked) == ids(longer)[::-1][:5]
        given = hook.seen[-1]
        assert len(given.item_idx) == 15 and given.k == 5 and given.genre_matrix.shape[0] == answerer.n_items
        assert all(r.reason for r in reranked.rows)
    assert list(hook.seen[1].history_idx) == list(answerer.movie_index([1, 71]))


def test_a_rerank_hook_returning_nonsense_is_refused(answerer):
    class Bad(Reverse):
        name = "bad"

        def rerank(self, candidates):
            return np.array([0, 0, 1])

    with pytest.raises(ConfigError, match="The re-ranker 'bad' returned an invalid order."):
        answerer.answer(Query(KnownUser(42), k=5, rerank=Bad()))


# -- through an index ----------------------------------------------------------------------
def test_an_exact_index_answers_what_the_model_answers(ml100k):
    from movierec.retrieval import ModelIndex

    bundle = train("als", ml100k, seed=0)
    plain = Answerer(bundle)
    indexed = Answerer(bundle, ModelIndex.build(bundle.model, "exact"))
    for query in (Query(KnownUser(42), k=10), Query(KnownUser(42), k=10, filters=Filters(min_ratings=100)),
                  Query(NewPerson(liked=(1, 71, 95)), k=10)):
        assert ids(indexed.answer(query)) == ids(plain.answer(query))
    users = indexed.answer_users([1, 2, 3], Query(KnownUser(0), k=5))
    assert [ids(a) for a in users] == [ids(plain.answer(Query(KnownUser(u), k=5))) for u in (1, 2, 3)]


# -- search and groups ----------------------------------------------------------------------
def test_search_movie_and_groups(answerer):
    assert answerer.search("star wars", 3)[0].movie_id == 50
    assert [m.movie_id for m in answerer.search("", 3)] == [50, 258, 100]  # the most rated
    assert answerer.movie("50").title == "Star Wars"
    groups = answerer.groups(6)
    assert len(groups) == 6
    picked = answerer.picked_groups([0, 1], 6, k=5)
    assert not picked.fallback and all(r.reason.startswith("Because you picked movies like ") for r in picked.rows)
    with pytest.raises(ConfigError, match="There is no taste group 9; the groups are 0 to 5."):
        answerer.picked_groups([9], 6)


def test_the_liked_threshold_follows_the_models_scale_not_3_5(tmp_path):
    """On a 1-10 scale the liked threshold is 6.625 (3.5 on 1-5, scaled): a 5 out of 10 is a
    dislike. It never explains a recommendation, for a new person or a known user (a
    reasoner anchored at a fixed 3.5 stars would cite it)."""
    from movierec.data import load_ratings

    rng = np.random.default_rng(0)
    rows = ["user,movie,rating,timestamp"]
    for u in range(1, 121):  # two tastes: movies 1-20 and movies 21-40
        fan_of = 0 if u % 2 else 20
        for j, m in enumerate(rng.choice(20, 12, replace=False) + 1 + fan_of):
            # most rated 8-10, a third 5 of 10: in the same taste, below the liked threshold
            rows.append(f"{u},{m},{5 if j % 3 == 0 else int(rng.integers(8, 11))},{1000 + j}")
        rows.append(f"{u},{41 + u % 5},{1 + u % 2},3000")  # the scale's bottom is seen too (1-10)
    path = tmp_path / "ten.csv"
    path.write_text("\n".join(rows) + "\n")
    ds = load_ratings(path, rating_range=(1, 10))
    answers = Answerer(train("ease", ds, seed=0))
    assert answers.threshold == 6.625
    given = ((1, 9), (2, 10), (3, 5), (4, 5), (5, 5), (6, 5))  # one taste: likes and 5-of-10 dislikes
    answer = answers.answer(Query(NewPerson(rated=given), k=8))
    assert set(answer.liked) == {1, 2} and set(answer.disliked) == {3, 4, 5, 6}
    assert all(r.reason is None or r.reason.endswith(("9 stars", "10 stars")) for r in answer.rows)
    assert sum(r.reason is not None for r in answer.rows) >= 4
    for user in (1, 2, 3):  # known users: their 5-of-10 movies are never cited either
        rows_ = answers.answer(Query(KnownUser(user), k=5)).rows
        assert rows_ and all(r.reason is None or not r.reason.endswith(" 5 stars") for r in rows_)
        assert any(r.reason for r in rows_)
