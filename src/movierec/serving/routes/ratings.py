"""Ratings: POST /ratings (store a person's stars), GET /ratings (a profile's stored
ratings) and GET /profile/recommend (recommendations from them).

The feedback database records the scale and movie ID kind of the model it was opened for
(`movierec.data.feedback`); while a version on another scale or with other IDs is served,
new ratings are refused with 409 rather than stored on the wrong scale.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query as Param

from movierec.answers import KnownUser, NewPerson, Query
from movierec.data.feedback import FeedbackStore, scale_text
from movierec.errors import UnknownUserError
from movierec.rerank import parse_rerank
from movierec.serving import schemas as s
from movierec.serving.ab import person_key
from movierec.serving.deps import ApiError, Experiments, Served, Store
from movierec.serving.routes.recommend import FilterParams, KParam, RerankParam
from movierec.serving.routes.responses import ERRORS_404, ERRORS_ADMIN
from movierec.serving.state import ServedModel

router = APIRouter(tags=["ratings"], responses=ERRORS_404)

ProfileQuery = Annotated[str, Param(pattern=s.PROFILE_PATTERN, description="The browser's profile token.")]


def check_store(m: ServedModel, store: FeedbackStore) -> None:
    """Refuse (409) to store ratings for a model whose scale or movie ID kind is not the
    feedback database's."""
    kind = store.id_kind
    if kind is not None and kind != m.movie_id_kind:
        words = {"int": "whole-number", "str": "text"}
        raise ApiError(409, f"The feedback database holds {words[kind]} movie IDs, but the model served now has "
                            f"{words[m.movie_id_kind]} ones; ratings are stored again once such a model is served.")
    have, scale = store.rating_scale, m.answers.rating_scale
    if have is not None and scale is not None and not all(math.isclose(a, b) for a, b in zip(have, scale)):
        raise ApiError(409, f"The feedback database holds ratings on the {scale_text(have)} scale, but the model "
                            f"served now rates on {scale_text(scale)}; ratings are stored again once a model on "
                            f"{scale_text(have)} is served.")


@router.post("/ratings", response_model=s.RatingsStored, responses={409: ERRORS_ADMIN[409]})
def post_ratings(m: Served, store: Store, ab: Experiments, req: s.RatingsRequest) -> dict:
    """Store a person's stars (durably, before answering); a new rating of the same
    movie replaces the old one. Stars must lie on the model's scale (GET /health:
    rating_scale); movies the model does not know are not stored."""
    rated = [(m.movie_id(r.movie_id), r.rating) for r in req.ratings]
    m.answers.check_stars(rated)
    check_store(m, store)
    idx = m.answers.movie_index([movie for movie, _ in rated], missing="mask").tolist()
    keep = [pair for pair, i in zip(rated, idx) if i >= 0]
    ignored = list(dict.fromkeys(movie for (movie, _), i in zip(rated, idx) if i < 0))
    stored = store.add(req.profile, keep) if keep else 0
    ab.rated(req.profile, keep)  # ratings of movies an experiment showed this profile are its outcomes
    return {"model": m.ref, "profile": req.profile, "stored": stored, "ignored": ignored}


@router.get("/ratings", response_model=s.ProfileRatings)
def get_ratings(m: Served, store: Store, profile: ProfileQuery) -> dict:
    """A profile's stored ratings, oldest first."""
    rows = store.ratings(profile)
    return {"model": m.ref, "profile": profile,
            "ratings": [{"movie_id": r.movie_id, "rating": r.rating, "timestamp": r.timestamp} for r in rows]}


@router.get("/profile/recommend", response_model=s.ProfileRecommendation)
def profile_recommend(m: Served, store: Store, ab: Experiments, profile: ProfileQuery, filters: FilterParams,
                      k: KParam = 10, rerank: RerankParam = None) -> dict:
    """Recommendations from a profile's stored ratings, read as likes and dislikes (a
    fallback list before any rating). A profile the served version was retrained from
    (and has not rated anything since) is answered as the user it became (`user_id`)."""
    rows = store.ratings(profile)
    stars = m.answers.on_scale((r.movie_id, r.rating) for r in rows)
    user = m.profile_user(profile, max((r.timestamp for r in rows), default=None))
    person = person_key(profile=profile)  # inside an A/B experiment: bucketed by the profile token, and logged
    reranker = parse_rerank(rerank)
    new_person = Query(NewPerson(rated=tuple(stars)), k=k, filters=filters, rerank=reranker)
    if user is None:
        return {**ab.answer(m, person, new_person), "user_id": None}
    try:
        answer = ab.answer(m, person, Query(KnownUser(user), k=k, filters=filters, rerank=reranker))
    except UnknownUserError:  # an experiment's variant serves an older version that never learned the profile
        return {**ab.answer(m, person, new_person), "user_id": None}
    threshold = m.answers.threshold
    idx = m.answers.movie_index([movie for movie, _ in stars], missing="mask").tolist()
    known = [(movie, value) for (movie, value), i in zip(stars, idx) if i >= 0]
    return {"model": answer["model"], "variant": answer["variant"], "user_id": user,
            "ignored": [movie for (movie, _), i in zip(stars, idx) if i < 0],
            "liked": [movie for movie, value in known if threshold is None or value >= threshold],
            "disliked": [movie for movie, value in known if threshold is not None and value < threshold],
            "liked_threshold": threshold if stars else None,
            "fallback": answer["fallback"], "fallback_reason": answer["fallback_reason"], "items": answer["items"]}
