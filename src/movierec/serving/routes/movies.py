"""Movies: GET /similar/{movie_id}, GET /movies (title search) and GET /movies/{movie_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Query as Param
from fastapi.responses import Response

from movierec.answers import Query, SimilarTo
from movierec.rerank import parse_rerank
from movierec.serving import schemas as s
from movierec.serving.deps import Served
from movierec.serving.routes.recommend import FilterParams, KParam, RerankParam
from movierec.serving.routes.responses import ERRORS_404

router = APIRouter(tags=["movies"], responses=ERRORS_404)


MovieIdPath = Annotated[s.RawId, PathParam(description="Raw movie ID: a whole number, or a text for a model "
                                                        "trained on text IDs.")]


@router.get("/similar/{movie_id}", response_model=s.SimilarMovies)
async def similar(m: Served, movie_id: MovieIdPath, filters: FilterParams, k: KParam = 10,
                  rerank: RerankParam = None) -> Response:
    """Movies similar to one movie (optionally re-ranked for variety: `rerank=mmr:0.3`)."""
    query = Query(SimilarTo(m.movie_id(movie_id, text=True)), k=k, filters=filters, rerank=parse_rerank(rerank))
    return Response(m.answer_bytes(query), media_type="application/json")


@router.get("/movies", response_model=s.MovieList)
def movies(m: Served, q: Annotated[str, Param(max_length=200, description="Words of a title.")] = "",
           limit: Annotated[int, Param(description="How many movies at most (1 to 1000).")] = 20) -> dict:
    """Title search (case, accents and a missing leading "The" forgiven); the most-rated
    movies for an empty query."""
    return {"model": m.ref, "items": [movie.to_json() for movie in m.answers.search(q, limit)]}


@router.get("/movies/{movie_id}", response_model=s.MovieDetail)
async def movie(m: Served, movie_id: MovieIdPath) -> dict:
    """One movie with its rating count."""
    return {**m.answers.movie(m.movie_id(movie_id, text=True)).to_json(), "model": m.ref}
