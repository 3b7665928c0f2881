"""Recommendations: GET /recommend (a known user), POST /recommend/batch, and
GET/POST /recommend_cold (a new person, no retraining). Every route builds one
`movierec.answers.Query` and lets the answer layer answer it.

A plain, valid GET /recommend is usually answered before it gets here, by
`movierec.serving.middleware.AnswerFastPath`, with the same bytes this route answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query as Param
from fastapi.responses import Response

from movierec.answers import Filters, KnownUser, NewPerson, Query
from movierec.serving import schemas as s
from movierec.serving.deps import ApiError, Served
from movierec.serving.routes.responses import ERRORS_404

router = APIRouter(tags=["recommend"], responses=ERRORS_404)
#: comma-separated movie IDs in a query string (short enough to stay one valid request line)
IDS_PATTERN = r"^[0-9, -]*$"


def parse_ids(text: str, what: str) -> list[int]:
    """Comma-separated raw movie IDs (blanks skipped) -> ints; 422 for anything else."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > s.MAX_INPUT_MOVIES:
        raise ApiError(422, f"Give at most {s.MAX_INPUT_MOVIES} {what}.")
    ids = []
    for p in parts:
        try:
            value = int(p)
        except ValueError:
            raise ApiError(422, f"{what.capitalize()} must be whole numbers separated by commas; got {p[:40]!r}.") from None
        if not -(2**63) <= value < 2**63:
            raise ApiError(422, f"{p[:40]} is not a movie ID.")
        ids.append(value)
    return ids


async def filter_params(
    min_ratings: Annotated[int, Param(description="Only movies with at least this many training ratings.")] = 0,
    genres: Annotated[str, Param(max_length=500, description="Only movies of one of these genres, comma-separated.")
                      ] = "",
    only: Annotated[str | None, Param(max_length=5000, pattern=IDS_PATTERN,
                                      description="Only these movie IDs, comma-separated.")] = None,
    exclude: Annotated[str, Param(max_length=5000, pattern=IDS_PATTERN,
                                  description="Never these movie IDs, comma-separated.")] = "",
) -> Filters:
    """The candidate filters of a GET route (checked by the answer layer)."""
    allow = parse_ids(only, "movie IDs in only") if only is not None else None
    if only is not None and not allow:
        raise ApiError(422, "only needs at least one movie ID, like only=1,50,172.")
    return Filters(min_ratings=min_ratings, genres=tuple(g for g in genres.split(",") if g.strip()),
                   allow=tuple(allow) if allow is not None else None,
                   deny=tuple(parse_ids(exclude, "movie IDs in exclude")))


def filters_of(body: s.FiltersIn | None) -> Filters:
    """The candidate filters of a JSON body (checked by the answer layer)."""
    if body is None:
        return Filters()
    return Filters(min_ratings=body.min_ratings, genres=tuple(body.genres),
                   allow=tuple(body.only) if body.only is not None else None, deny=tuple(body.exclude))


FilterParams = Annotated[Filters, Depends(filter_params)]
KParam = Annotated[int, Param(description="How many movies (1 to 1000).")]


@router.get("/recommend", response_model=s.Recommendation)
async def recommend(m: Served, user_id: Annotated[int, Param(ge=-(2**63), le=2**63 - 1, description="Raw user ID.")], filters: FilterParams,
                    k: KParam = 10, exclude_seen: bool = True) -> Response:
    """Top-k movies for a known user, with a reason per movie."""
    query = Query(KnownUser(user_id), k=k, exclude_seen=exclude_seen, filters=filters)
    return Response(m.answer_bytes(query), media_type="application/json")


@router.post("/recommend/batch", response_model=s.BatchRecommendation)
def recommend_batch(m: Served, req: s.BatchRequest) -> dict:
    """Top-k movies for up to 1000 known users."""
    query = Query(KnownUser(req.user_ids[0]), k=req.k, exclude_seen=req.exclude_seen, filters=filters_of(req.filters))
    answers = m.answers.answer_users(req.user_ids, query)
    return {"model": m.ref, "results": [{"user_id": u, "items": a.items_json()} for u, a in zip(req.user_ids, answers)]}


@router.get("/recommend_cold", response_model=s.ColdRecommendation)
async def recommend_cold_get(m: Served, filters: FilterParams,
                             liked: Annotated[str, Param(max_length=5000, pattern=IDS_PATTERN,
                                                         description="Movie IDs the person likes, comma-separated.")
                                              ] = "",
                             k: KParam = 10) -> dict:
    """A new person's list from movies they like (no retraining)."""
    return m.answer(Query(NewPerson(liked=tuple(parse_ids(liked, "liked movies"))), k=k, filters=filters))


@router.post("/recommend_cold", response_model=s.ColdRecommendation)
async def recommend_cold_post(m: Served, req: s.ColdRequest) -> dict:
    """A new person's list from their stars and/or liked movies (no retraining). Stars
    below the liked threshold are dislikes: never "more like this"."""
    person = NewPerson(rated=tuple((r.movie_id, r.rating) for r in req.ratings), liked=tuple(req.liked))
    return m.answer(Query(person, k=req.k, filters=filters_of(req.filters), liked_threshold=req.liked_threshold))
