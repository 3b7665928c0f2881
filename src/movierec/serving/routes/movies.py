"""Movies: GET /similar/{movie_id}, GET /movies (title search) and GET /movies/{movie_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Query as Param
from fastapi.responses import Response

from movierec.answers import Query, SimilarTo
from movierec.serving import schemas as s
from movierec.serving.deps import Served
from movierec.serving.routes.recommend import FilterParams, KParam
from movierec.serving.routes.responses import ERRORS_404

router = APIRouter(tags=["movies"], responses=ERRORS_404)


@router.get("/similar/{movie_id}", response_model=s.SimilarMovies)
async def similar(m: Served, movie_id: Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1)], filters: FilterParams, k: KParam = 10) -> Response:
    """Movies similar to one movie."""
    return Response(m.answer_bytes(Query(SimilarTo(movie_id), k=k, filters=filters)), media_type="application/json")


@router.get("/movies", response_model=s.MovieList)
def movies(m: Served, q: Annotated[str, Param(max_length=200, description="Words of a title.")] = "",
           limit: Annotated[int, Param(description="How many movies at most (1 to 1000).")] = 20) -> dict:
    """Title search (case, accents and a missing leading "The" forgiven); the most-rated
    movies for an empty query."""
    return {"model": m.ref, "items": [movie.to_json() for movie in m.answers.search(q, limit)]}


@router.get("/movies/{movie_id}", response_model=s.MovieDetail)
async def movie(m: Served, movie_id: Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1)]) -> dict:
    """One movie with its rating count."""
    return {**m.answers.movie(movie_id).to_json(), "model": m.ref}
