"""Onboarding: GET /onboarding (taste groups for a first visit) and POST /onboarding
(first recommendations from the groups a person picked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from movierec.serving import schemas as s
from movierec.serving.deps import Served
from movierec.serving.routes.responses import ERRORS_404

router = APIRouter(tags=["onboarding"], responses=ERRORS_404)


@router.get("/onboarding", response_model=s.Onboarding)
def onboarding(m: Served, groups: Annotated[int, Query(ge=2, le=20)] = 8) -> dict:
    """Taste groups for a first visit: each one genre or a pair of genres that every shown movie has
    (`movierec.answers.onboarding`)."""
    movies = m.answers.movies
    return {"model": m.ref, "groups": [
        {"group_id": g.group_id, "label": g.label, "genres": g.genres,
         "movies": [movies[i].to_json() for i in g.movie_idx.tolist()]} for g in m.groups(groups)]}


@router.post("/onboarding", response_model=s.ColdRecommendation)
def onboarding_pick(m: Served, req: s.OnboardingRequest) -> dict:
    """First recommendations from the taste groups a person picked (their movies count as liked)."""
    return {"model": m.ref, **m.answers.picked_groups(req.group_ids, req.groups, req.k).to_json()}
