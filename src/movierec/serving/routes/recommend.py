"""Recommendations: GET /recommend (a known user), POST /recommend/batch, and
GET/POST /recommend_cold (a new person, no retraining). Every route builds one
`movierec.answers.Query` and lets the answer layer answer it. IDs are read as the served
model's kind (`ServedModel.user_id`/`movie_id`): whole numbers or text.

A plain, valid GET /recommend is usually answered before it gets here, by
`movierec.serving.middleware.AnswerFastPath`, with the same bytes this route answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from movierec.answers import Filters, KnownUser, NewPerson, Query
from movierec.answers.query import RawId
from movierec.errors import ConfigError
from movierec.rerank import parse_rerank
from movierec.serving import schemas as s
from movierec.serving.ab import person_key
from movierec.serving.deps import ApiError, Experiments, Served
from movierec.serving.routes.responses import ERRORS_404
from movierec.serving.state import ServedModel

router = APIRouter(tags=["recommend"], responses=ERRORS_404)


def parse_ids(m: ServedModel, text: str, what: str) -> list[RawId]:
    """Comma-separated raw movie IDs (blanks skipped) -> the model's IDs (whole numbers or
    text, as it was trained on); 422 for anything else."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > s.MAX_INPUT_MOVIES:
        raise ApiError(422, f"Give at most {s.MAX_INPUT_MOVIES} {what}.")
    ids = []
    for p in parts:
        if len(p) > s.MAX_ID_CHARS:
            raise ApiError(422, f"{p[:40]}... is not a movie ID: IDs are at most {s.MAX_ID_CHARS} characters.")
        try:
            ids.append(m.movie_id(p, text=True))
        except ConfigError:
            raise ApiError(422, f"{what[:1].upper() + what[1:]} must be whole numbers separated by commas (this "
                                f"model's movie IDs are); got {p[:40]!r}.") from None
    return ids


async def filter_params(
    m: Served,
    min_ratings: Annotated[int, Param(description="Only movies with at least this many training ratings.")] = 0,
    genres: Annotated[str, Param(max_length=500, description="Only movies of one of these genres, comma-separated.")
                      ] = "",
    only: Annotated[str | None, Param(max_length=s.MAX_IDS_CHARS, pattern=s.IDS_PATTERN,
                                      description="Only these movie IDs, comma-separated.")] = None,
    exclude: Annotated[str, Param(max_length=s.MAX_IDS_CHARS, pattern=s.IDS_PATTERN,
                                  description="Never these movie IDs, comma-separated.")] = "",
) -> Filters:
    """The candidate filters of a GET route (checked by the answer layer)."""
    allow = parse_ids(m, only, "movie IDs in only") if only is not None else None
    if only is not None and not allow:
        raise ApiError(422, "only needs at least one movie ID, like only=1,50,172.")
    return Filters(min_ratings=min_ratings, genres=tuple(g for g in genres.split(",") if g.strip()),
                   allow=tuple(allow) if allow is not None else None,
                   deny=tuple(parse_ids(m, exclude, "movie IDs in exclude")))


def filters_of(m: ServedModel, body: s.FiltersIn | None) -> Filters:
    """The candidate filters of a JSON body, with the model's movie IDs (checked by the answer layer)."""
    if body is None:
        return Filters()
    return Filters(min_ratings=body.min_ratings, genres=tuple(body.genres),
                   allow=tuple(m.movie_id(x) for x in body.only) if body.only is not None else None,
                   deny=tuple(m.movie_id(x) for x in body.exclude))


FilterParams = Annotated[Filters, Depends(filter_params)]
KParam = Annotated[int, Param(description="How many movies (1 to 1000).")]
RerankParam = Annotated[str | None, Param(max_length=s.MAX_RERANK_CHARS, description=s.RERANK_HELP)]


@router.get("/recommend", response_model=s.Recommendation)
async def recommend(m: Served, ab: Experiments, user_id: Annotated[s.RawId, Param(description=(
                        "Raw user ID: a whole number, or a text for a model trained on text IDs."))],
                    filters: FilterParams, k: KParam = 10, exclude_seen: bool = True,
                    rerank: RerankParam = None) -> Response:
    """Top-k movies for a known user, with a reason per movie."""
    query = Query(KnownUser(m.user_id(user_id, text=True)), k=k, exclude_seen=exclude_seen, filters=filters,
                  rerank=parse_rerank(rerank))
    if ab.experiments:  # the user's variant answers; the list is logged (a disk write: off the event loop)
        body = await run_in_threadpool(ab.answer_json, m, person_key(user_id=query.subject.user_id), query)
        return Response(body, media_type="application/json")
    return Response(m.answer_bytes(query), media_type="application/json")


@router.post("/recommend/batch", response_model=s.BatchRecommendation)
def recommend_batch(m: Served, ab: Experiments, req: s.BatchRequest) -> dict:
    """Top-k movies for up to 1000 known users. Inside an A/B experiment each user is
    answered by their variant (named in their result) and each list is logged."""
    users = [m.user_id(u) for u in req.user_ids]
    query = Query(KnownUser(users[0]), k=req.k, exclude_seen=req.exclude_seen, filters=filters_of(m, req.filters),
                  rerank=parse_rerank(req.rerank))
    return ab.answer_batch(m, users, query)


@router.get("/recommend_cold", response_model=s.ColdRecommendation)
async def recommend_cold_get(m: Served, filters: FilterParams,
                             liked: Annotated[str, Param(
                                 max_length=s.MAX_IDS_CHARS, pattern=s.IDS_PATTERN,
                                 description="Movie IDs the person likes, comma-separated (printable ASCII: give "
                                             "other text IDs to POST /recommend_cold).")] = "",
                             k: KParam = 10, rerank: RerankParam = None) -> dict:
    """A new person's list from movies they like (no retraining)."""
    return m.answer(Query(NewPerson(liked=tuple(parse_ids(m, liked, "liked movies"))), k=k, filters=filters,
                          rerank=parse_rerank(rerank)))


@router.post("/recommend_cold", response_model=s.ColdRecommendation)
async def recommend_cold_post(m: Served, req: s.ColdRequest) -> dict:
    """A new person's list from their stars and/or liked movies (no retraining). Stars
    below the liked threshold are dislikes: never "more like this"."""
    person = NewPerson(rated=tuple((m.movie_id(r.movie_id), r.rating) for r in req.ratings),
                       liked=tuple(m.movie_id(x) for x in req.liked))
    return m.answer(Query(person, k=req.k, filters=filters_of(m, req.filters), liked_threshold=req.liked_threshold,
                          rerank=parse_rerank(req.rerank)))
