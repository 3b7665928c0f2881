"""The typed questions the answer layer takes: who (a known user, a new person, a movie),
how many, and which movies may be answered.

A `Query` is checked when it is made (`k`, the filters, the liked threshold), so the CLI
and the service refuse the same bad question with the same sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from movierec.errors import ConfigError
from movierec.rerank import RerankInput, Reranker  # re-exported: the re-rankers live in movierec.rerank

#: a raw user or movie ID, as the model's ID maps hold it (a whole number or a text)
RawId = Union[int, str]
#: the longest list a query may ask for
MAX_K = 1000
#: movies a new person may give in one query (stars and liked movies together)
MAX_GIVEN = 500


def check_k(k: Any) -> int:
    """`k` as an int, or a ConfigError naming the allowed range."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_K:
        raise ConfigError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
    return int(k)


@dataclass(frozen=True)
class KnownUser:
    """A user the model was trained on (raw user ID)."""

    user_id: RawId


@dataclass(frozen=True)
class NewPerson:
    """Someone the model has never seen, known by their stars and/or the movies they like.

    Attributes:
        rated: (raw movie ID, stars) pairs on the model's scale; a repeated movie keeps its
            last stars.
        liked: raw movie IDs the person likes (no stars). With stars given too, a liked
            movie counts as rated at the top of the scale.
        picked: the liked movies come from taste groups the person picked (onboarding):
            reasons then read "Because you picked movies like X".
    """

    rated: tuple[tuple[RawId, float], ...] = ()
    liked: tuple[RawId, ...] = ()
    picked: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rated", tuple((m, r) for m, r in self.rated))
        object.__setattr__(self, "liked", tuple(self.liked))
        if len(self.rated) + len(self.liked) > MAX_GIVEN:
            raise ConfigError(f"Give at most {MAX_GIVEN} movies for a new person.")
        for movie, stars in self.rated:
            if isinstance(stars, bool) or not isinstance(stars, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(stars)):
                raise ConfigError(f"The rating of movie {movie} must be a finite number, got {stars!r}.")


@dataclass(frozen=True)
class SimilarTo:
    """Movies like one movie (raw movie ID)."""

    movie_id: RawId


Subject = Union[KnownUser, NewPerson, SimilarTo]


@dataclass(frozen=True)
class Filters:
    """Which movies an answer may hold.

    Attributes:
        min_ratings: only movies with at least this many training ratings.
        genres: only movies of at least one of these genres (names as the catalog spells
            them, any case).
        allow: only these raw movie IDs (None: every movie); an unknown ID is refused.
        deny: never these raw movie IDs (unknown ones are ignored: nothing to remove).
    """

    min_ratings: int = 0
    genres: tuple[str, ...] = ()
    allow: tuple[RawId, ...] | None = None
    deny: tuple[RawId, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.min_ratings, bool) or not isinstance(self.min_ratings, (int, np.integer)) \
                or self.min_ratings < 0:
            raise ConfigError(f"min_ratings must be a whole number of 0 or more, got {self.min_ratings!r}.")
        object.__setattr__(self, "genres", tuple(str(g).strip() for g in self.genres if str(g).strip()))
        if self.allow is not None:
            object.__setattr__(self, "allow", tuple(self.allow))
            if not self.allow:
                raise ConfigError("The allow list is empty, so no movie could be answered; leave it out instead.")
        object.__setattr__(self, "deny", tuple(self.deny))

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.min_ratings or self.genres or self.allow is not None or self.deny)


@dataclass(frozen=True)
class Query:
    """One question for the answer layer.

    Attributes:
        subject: a `KnownUser`, a `NewPerson` or `SimilarTo` a movie.
        k: list length, 1 to MAX_K.
        exclude_seen: leave out the movies the person rated (a known user's training
            movies, a new person's movies given); similar movies always leave out the
            movie asked about.
        filters: which movies may be answered.
        liked_threshold: stars at or above which a new person's rating counts as liked
            (None: the model's own, 3.5 on a 1-5 scale scaled to its range).
        rerank: an optional second pass (see `Reranker`; `movierec.rerank.parse_rerank` makes
            one from its text form, "mmr:0.3", "calibrated:0.5" or "calibrated:0.6+diversity:0.1").
    """

    subject: Subject
    k: int = 10
    exclude_seen: bool = True
    filters: Filters = field(default_factory=Filters)
    liked_threshold: float | None = None
    rerank: Reranker | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject, (KnownUser, NewPerson, SimilarTo)):
            raise ConfigError("A query is about a known user, a new person or a movie.")
        object.__setattr__(self, "k", check_k(self.k))
        if self.liked_threshold is not None:
            value = self.liked_threshold
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(value)):
                raise ConfigError(f"The liked threshold must be a finite number of stars, got {value!r}.")
            object.__setattr__(self, "liked_threshold", float(value))


__all__ = ["Query", "KnownUser", "NewPerson", "SimilarTo", "Subject", "Filters", "Reranker", "RerankInput",
           "RawId", "MAX_K", "MAX_GIVEN", "check_k"]
