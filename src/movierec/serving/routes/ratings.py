"""Ratings: POST /ratings (store a person's stars), GET /ratings (a profile's stored
ratings) and GET /profile/recommend (recommendations from them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query as Param

from movierec.answers import NewPerson, Query
from movierec.serving import schemas as s
from movierec.serving.deps import Served, Store
from movierec.serving.routes.recommend import FilterParams, KParam
from movierec.serving.routes.responses import ERRORS_404

router = APIRouter(tags=["ratings"], responses=ERRORS_404)

ProfileQuery = Annotated[str, Param(pattern=s.PROFILE_PATTERN, description="The browser's profile token.")]


@router.post("/ratings", response_model=s.RatingsStored)
def post_ratings(m: Served, store: Store, req: s.RatingsRequest) -> dict:
    """Store a person's stars (durably, before answering); a new rating of the same
    movie replaces the old one. Stars must lie on the model's scale; movies the model
    does not know are not stored."""
    m.answers.check_stars((r.movie_id, r.rating) for r in req.ratings)
    idx = m.answers.movie_index([r.movie_id for r in req.ratings], missing="mask")
    keep = [(r.movie_id, r.rating) for r, i in zip(req.ratings, idx.tolist()) if i >= 0]
    ignored = list(dict.fromkeys(r.movie_id for r, i in zip(req.ratings, idx.tolist()) if i < 0))
    stored = store.add(req.profile, keep) if keep else 0
    return {"model": m.ref, "profile": req.profile, "stored": stored, "ignored": ignored}


@router.get("/ratings", response_model=s.ProfileRatings)
def get_ratings(m: Served, store: Store, profile: ProfileQuery) -> dict:
    """A profile's stored ratings, oldest first."""
    rows = store.ratings(profile)
    return {"model": m.ref, "profile": profile,
            "ratings": [{"movie_id": r.movie_id, "rating": r.rating, "timestamp": r.timestamp} for r in rows]}


@router.get("/profile/recommend", response_model=s.ColdRecommendation)
def profile_recommend(m: Served, store: Store, profile: ProfileQuery, filters: FilterParams, k: KParam = 10) -> dict:
    """Recommendations from a profile's stored ratings, read as likes and dislikes (a
    fallback list before any rating)."""
    rows = m.answers.on_scale((r.movie_id, r.rating) for r in store.ratings(profile))
    return m.answer(Query(NewPerson(rated=tuple(rows)), k=k, filters=filters))
