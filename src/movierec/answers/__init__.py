"""The answer layer: one place that answers "what should this person watch?" for the CLI and the service.

A typed `Query` (a known user, a new person from their stars and/or liked movies, or movies
similar to one movie; k; exclude seen; candidate filters; an optional re-ranker) goes in,
a typed `Answer` (movie rows with title, year, genres, rating count, score and a reason,
and a flag when a fallback answered) comes out. `Answerer(bundle, index)` is built once
per loaded model version.

Likes and dislikes: a new person's rating below the model's liked threshold (3.5 on a 1-5
scale, scaled to the model's range) is never "more like this": models that can use
negative feedback use it, the others leave it out, and reasons cite only movies the
person liked.
"""

from movierec.answers.answer import Answer, Movie, Row
from movierec.answers.answerer import DEFAULT_GROUPS, Answerer, coerce_id, rating_counts
from movierec.answers.onboarding import TasteGroup
from movierec.answers.query import (
    MAX_GIVEN,
    MAX_K,
    Filters,
    KnownUser,
    NewPerson,
    Query,
    Reranker,
    RerankInput,
    SimilarTo,
)
from movierec.answers.reasons import POPULAR, Reasoner

__all__ = [
    "Answer", "Answerer", "Filters", "KnownUser", "MAX_GIVEN", "MAX_K", "Movie", "NewPerson", "POPULAR", "Query",
    "Reasoner", "Reranker", "RerankInput", "Row", "SimilarTo", "TasteGroup", "DEFAULT_GROUPS", "coerce_id",
    "rating_counts",
]
