"""Pydantic models of the HTTP API: requests (validated, extra fields refused) and answers.

IDs are raw MovieLens IDs (whole numbers within 64 bits); every answer names the model
version that produced it (`ModelRef`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: raw user or movie ID as the API takes it: a whole number that fits 64 bits
RawId = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: how many movies an answer may hold
MAX_K = 1000
#: users in one batch request
MAX_BATCH_USERS = 1000
#: movies in one cold-start request or one ratings request
MAX_INPUT_MOVIES = 500
#: a profile token: 8 to 64 letters, digits, "_" or "-"
PROFILE_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"

K = Annotated[int, Field(ge=1, le=MAX_K, description="How many movies to answer (1..1000).")]
Rating = Annotated[float, Field(ge=0.5, le=5.0, multiple_of=0.5, description="Stars, 0.5 to 5 in steps of 0.5.")]
Profile = Annotated[str, Field(pattern=PROFILE_PATTERN, description="The browser's profile token.")]


class _Request(BaseModel):
    # strict: JSON true is not the number 1, "5" is not 5; unknown fields are refused
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelRef(BaseModel):
    """The model version that produced an answer."""

    name: str
    version: str | None


class ErrorBody(BaseModel):
    """An error: one sentence (or FastAPI's list of validation errors for bad parameters)."""

    detail: str | list[dict[str, Any]]


class Movie(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


class MovieInfo(Movie):
    n_ratings: int = Field(description="Ratings of this movie in the model's training data.")


class ScoredMovie(Movie):
    score: float
    reason: str | None


class Health(BaseModel):
    status: str
    model: ModelRef
    n_users: int
    n_movies: int
    capabilities: list[str]


class Ready(BaseModel):
    ready: bool
    model: ModelRef


class Recommendation(BaseModel):
    model: ModelRef
    user_id: int
    items: list[ScoredMovie]


class BatchRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_ids": [1, 2, 3], "k": 10, "exclude_seen": True}]})
    user_ids: list[RawId] = Field(min_length=1, max_length=MAX_BATCH_USERS)
    k: K = 10
    exclude_seen: bool = True


class UserItems(BaseModel):
    user_id: int
    items: list[ScoredMovie]


class BatchRecommendation(BaseModel):
    model: ModelRef
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


class ColdRecommendation(BaseModel):
    model: ModelRef
    fallback: bool = Field(description="True when the list is a popularity/genre fallback, not the model's.")
    fallback_reason: str | None
    ignored: list[int] = Field(description="Movie IDs given that the model does not know.")
    items: list[ScoredMovie]


class SimilarMovies(BaseModel):
    model: ModelRef
    movie: Movie
    fallback: bool = Field(description="True when genre overlap and popularity stand in for the model.")
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
    movies: list[Movie]


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
    ignored: list[int] = Field(description="Movie IDs the model does not know; not stored.")


class StoredRating(BaseModel):
    movie_id: int
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


class AdminChange(BaseModel):
    model: ModelRef
    previous: ModelRef
