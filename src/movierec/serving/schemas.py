"""Pydantic models of the HTTP API: requests (validated, extra fields refused) and answers.

IDs are the model's raw IDs: whole numbers within 64 bits for a model trained on
whole-number IDs (MovieLens), JSON strings for a model trained on text IDs (such as IMDb's
"tt0111161" or user names). A request's ID is read as the served model's kind
(`ServedModel.movie_id`/`user_id`), so the schema takes either; text given to a model with
whole-number IDs is refused (422). Stars are checked against the model's own rating scale
by the answer layer, never against a fixed one. Every answer names the model version that
produced it (`ModelRef`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

#: the longest text ID the API takes (a model with longer IDs is not served)
MAX_ID_CHARS = 200
#: a whole-number raw ID: fits 64 bits
IntId = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: a text raw ID
TextId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
#: raw user or movie ID as the API takes and answers it: a whole number or a text, as the model's IDs are
RawId = Union[IntId, TextId]
#: how many movies an answer may hold
MAX_K = 1000
#: users in one batch request
MAX_BATCH_USERS = 1000
#: movies in one cold-start request or one ratings request
MAX_INPUT_MOVIES = 500
#: a comma-separated list of movie IDs in a query string: printable ASCII, at most 5000
#: characters, so that the request line stays within what the server reads (16 KiB) however it
#: is percent-encoded; text IDs beyond ASCII go in a JSON body (POST /recommend_cold, batch filters)
IDS_PATTERN = r"^[ -~]*$"
MAX_IDS_CHARS = 5000
#: the longest re-ranker text ("mmr:0.3", "calibrated:0.5") the API takes
MAX_RERANK_CHARS = 100
RERANK_HELP = ('Re-rank for variety: "mmr:W" (maximal marginal relevance) or "calibrated:W" (genre proportions '
               'of the liked movies), W from 0 (the model\'s order) to 1, e.g. "mmr:0.3", or both: '
               '"calibrated:W+diversity:V"; null or absent: none.')
#: a profile token: 8 to 64 letters, digits, "_" or "-"
PROFILE_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"

#: checked by the answer layer (one sentence, as the CLI says it), not by the schema
K = Annotated[int, Field(description="How many movies to answer (1..1000).")]
Rating = Annotated[float, Field(allow_inf_nan=False,
                                description="Stars on the model's rating scale (GET /health: rating_scale).")]
Profile = Annotated[str, Field(pattern=PROFILE_PATTERN, description="The browser's profile token.")]
#: the A/B variant that answered a list (movierec.serving.ab), null outside an experiment
Variant = Annotated[str | None, Field(description=(
    'The A/B experiment variant that answered, e.g. "A" ("A+B": an interleaved list); null outside an '
    "experiment."))]


class _Request(BaseModel):
    # strict: JSON true is not the number 1, "5" is not 5; unknown fields are refused
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelRef(BaseModel):
    """The model version that produced an answer."""

    name: str
    version: str | None


class Movie(BaseModel):
    movie_id: RawId
    title: str
    year: int | None
    genres: list[str]


class MovieInfo(Movie):
    n_ratings: int = Field(description="Ratings of this movie in the model's training data.")


class ScoredMovie(MovieInfo):
    score: float
    reason: str | None = Field(description="Why it is there (only movies the person liked are cited), or null.")


class CacheStatus(BaseModel):
    """Where this worker keeps answers, and how often they were found there."""

    kind: Literal["memory", "redis"] = Field(
        description='"memory": each worker\'s own; "redis": one Redis shared by every worker and replica.')
    url: str | None = Field(description="The Redis URL, without a password (null: memory).")
    reachable: bool = Field(description="Whether the cache answers now; when not, answers are computed.")
    entries: int | None = Field(description="Answers kept in this worker's memory (null: they live in Redis).")
    size: int = Field(description="Answers kept per model version in memory (0: no answer cache at all).")
    hits: int = Field(description="Answers this worker found in the cache, for the model version served.")
    misses: int = Field(description="Answers this worker looked up, did not find, and computed.")


class Health(BaseModel):
    status: str
    model: ModelRef
    n_users: int
    n_movies: int
    capabilities: list[str]
    rating_scale: list[float] | None = Field(description="[lowest, highest] stars the model takes (null: no scale).")
    liked_threshold: float | None = Field(
        description="Stars at or above which a rating counts as liked; lower ones are dislikes (null: no scale).")
    user_id_kind: Literal["int", "str"] = Field(
        description='"int": user IDs are whole numbers (JSON numbers); "str": text (JSON strings).')
    movie_id_kind: Literal["int", "str"] = Field(
        description='"int": movie IDs are whole numbers (JSON numbers); "str": text (JSON strings).')
    cache: CacheStatus


class FiltersIn(_Request):
    """Which movies an answer may hold."""

    min_ratings: int = Field(0, description="Only movies with at least this many training ratings.")
    genres: list[str] = Field(default_factory=list, max_length=50,
                              description="Only movies of at least one of these genres.")
    only: list[RawId] | None = Field(None, max_length=MAX_INPUT_MOVIES, description="Only these movie IDs.")
    exclude: list[RawId] = Field(default_factory=list, max_length=MAX_INPUT_MOVIES,
                                 description="Never these movie IDs.")


class Ready(BaseModel):
    ready: bool
    model: ModelRef


class Recommendation(BaseModel):
    model: ModelRef
    variant: Variant = None
    user_id: RawId
    fallback: bool
    fallback_reason: str | None
    items: list[ScoredMovie]


class BatchRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_ids": [1, 2, 3], "k": 10, "exclude_seen": True}]})
    user_ids: list[RawId] = Field(min_length=1, max_length=MAX_BATCH_USERS)
    k: K = 10
    exclude_seen: bool = True
    filters: FiltersIn | None = None
    rerank: str | None = Field(None, max_length=MAX_RERANK_CHARS, description=RERANK_HELP)


class UserItems(BaseModel):
    user_id: RawId
    model: ModelRef | None = Field(None, description="The model version that answered this user (inside an A/B "
                                                     "experiment: their variant's).")
    variant: Variant = None
    items: list[ScoredMovie]


class BatchRecommendation(BaseModel):
    model: ModelRef
    variant: Variant = Field(None, description="Always null: inside an A/B experiment each result names its user's "
                                               "variant.")
    results: list[UserItems]


class RatingIn(_Request):
    movie_id: RawId
    rating: Rating


class ColdRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ratings": [{"movie_id": 50, "rating": 5}, {"movie_id": 100, "rating": 4.5}], "liked": [1], "k": 10}]})
    ratings: list[RatingIn] = Field(default_factory=list, max_length=MAX_INPUT_MOVIES)
    liked: list[RawId] = Field(default_factory=list, max_length=MAX_INPUT_MOVIES)
    k: K = 10
    liked_threshold: float | None = Field(None, allow_inf_nan=False, description=(
        "Stars at or above which a rating counts as liked (default: the model's, GET /health)."))
    filters: FiltersIn | None = None
    rerank: str | None = Field(None, max_length=MAX_RERANK_CHARS, description=RERANK_HELP)


class ColdRecommendation(BaseModel):
    model: ModelRef
    variant: Variant = None
    fallback: bool = Field(description="True when the list is a popularity/genre fallback, not the model's.")
    fallback_reason: str | None
    ignored: list[RawId] = Field(description="Movie IDs given that the model does not know.")
    liked: list[RawId] = Field(description="Movie IDs that counted as liked (more like these).")
    disliked: list[RawId] = Field(description=("Movie IDs rated below the liked threshold: never more like these; "
                                             "used as negative feedback by models that can."))
    liked_threshold: float | None = Field(description="The threshold used (null when no stars were given).")
    items: list[ScoredMovie]


class ProfileRecommendation(ColdRecommendation):
    user_id: RawId | None = Field(description=(
        "The model's user this profile was trained as (a version retrained from the stored ratings), answered "
        "from that user's history; null: answered as a new person from the profile's stored ratings."))


class SimilarMovies(BaseModel):
    model: ModelRef
    variant: Variant = None
    movie: MovieInfo
    fallback: bool = Field(description="True when genre overlap and popularity stand in for the model.")
    fallback_reason: str | None
    items: list[ScoredMovie]


class MovieList(BaseModel):
    model: ModelRef
    items: list[MovieInfo]


class MovieDetail(MovieInfo):
    model: ModelRef


class TasteGroupOut(BaseModel):
    group_id: int
    label: str
    genres: list[str]
    movies: list[MovieInfo]


class Onboarding(BaseModel):
    model: ModelRef
    groups: list[TasteGroupOut]


class OnboardingRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"group_ids": [0, 2], "groups": 8, "k": 10}]})
    group_ids: list[Annotated[int, Field(ge=0, le=1000)]] = Field(min_length=1, max_length=50)
    groups: int = Field(8, ge=2, le=20, description="The number of groups the IDs refer to (GET /onboarding?groups=).")
    k: K = 10


class RatingsRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"profile": "my-browser-0001", "ratings": [{"movie_id": 50, "rating": 5}, {"movie_id": 1, "rating": 3.5}]}]})
    profile: Profile
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_INPUT_MOVIES)


class RatingsStored(BaseModel):
    model: ModelRef
    profile: str
    stored: int = Field(description="Ratings stored (or replaced) by this request.")
    ignored: list[RawId] = Field(description="Movie IDs the model does not know; not stored.")


class StoredRating(BaseModel):
    movie_id: RawId
    rating: float
    timestamp: int


class ProfileRatings(BaseModel):
    model: ModelRef
    profile: str
    ratings: list[StoredRating]


class PromoteRequest(_Request):
    version: str = Field(min_length=1, max_length=40)


class VersionOut(BaseModel):
    version: str
    current: bool
    created: str | None
    model_name: str | None


class AdminStatus(BaseModel):
    model: ModelRef
    source: str
    registry: bool
    pointer_version: str | None
    versions: list[VersionOut]
    loaded_at: str
    watch_interval: float
    last_error: str | None
    worker_pid: int = Field(description="The process that answered (each worker serves on its own).")
    cache_size: int = Field(description="GET /recommend answers this worker keeps per model version (0: none).")
    threads: int | None = Field(description="BLAS/OpenMP threads this worker computes with (null: the libraries' own).")
    cache: CacheStatus


class AdminChange(BaseModel):
    model: ModelRef
    previous: ModelRef
