"""The typed answers of the answer layer: movie rows with titles, counts, scores and reasons.

`Answer.to_json()` is the one JSON form of an answer: the service sends it (with the model
version added) and `movierec recommend --json` prints it, so the same question gets the
same list from both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from movierec.answers.query import RawId

#: scores beyond this are clipped in JSON (an infinite score is not JSON)
_LIMIT = 1e30


def plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value (for JSON); anything else unchanged."""
    return value.item() if hasattr(value, "item") else value


def finite(score: float) -> float:
    """A score as a JSON-safe float: NaN -> 0, infinities clipped to +-1e30."""
    score = float(score)
    if score != score:
        return 0.0
    return max(-_LIMIT, min(_LIMIT, score))


@dataclass(frozen=True)
class Movie:
    """A movie of the model's catalog.

    Attributes:
        movie_id: raw movie ID.
        title: title as the catalog spells it ("" when the catalog has none).
        year: release year, None when unknown.
        genres: genre names.
        n_ratings: training ratings of this movie.
    """

    movie_id: RawId
    title: str
    year: int | None
    genres: tuple[str, ...]
    n_ratings: int

    def __post_init__(self) -> None:  # the JSON form, made once: a movie is answered many times
        object.__setattr__(self, "_json", {"movie_id": self.movie_id, "title": self.title, "year": self.year,
                                           "genres": list(self.genres), "n_ratings": self.n_ratings})

    def to_json(self) -> dict[str, Any]:
        return dict(self._json, genres=list(self.genres))


@dataclass(slots=True)
class Row:
    """One recommended movie: the movie, its score and why it is there.

    Attributes:
        movie: the movie.
        score: the model's score (or the fallback's), higher is better.
        reason: a short sentence ("Because you rated Alien (1979) 5 stars"), or None.
    """

    movie: Movie
    score: float
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        score = self.score
        if not -_LIMIT <= score <= _LIMIT:  # NaN, infinities: not JSON
            score = finite(score)
        return {**self.movie._json, "genres": list(self.movie.genres), "score": score, "reason": self.reason}


@dataclass(slots=True)
class Answer:
    """The answer to one `Query`.

    Attributes:
        kind: "user" (a known user), "new" (a new person) or "similar" (movies like one).
        rows: the movies, best first (at most k; fewer when filters leave fewer).
        fallback: True when the list is not the model's own (popular movies leaning to the
            genres given, or genre overlap for similar movies) -- `fallback_reason` says why.
        fallback_reason: one sentence, or None.
        user_id: the known user's raw ID (kind "user").
        movie: the movie asked about (kind "similar").
        ignored: raw movie IDs a new person gave that the model does not know.
        liked: raw movie IDs of a new person that counted as liked (positive feedback).
        disliked: raw movie IDs of a new person rated below the liked threshold: never
            "more like this"; models that can use them as negative feedback do, the others
            leave them out.
        liked_threshold: the stars at or above which a rating counted as liked (None for
            data without a rating scale).
    """

    kind: str
    rows: tuple[Row, ...]
    fallback: bool = False
    fallback_reason: str | None = None
    user_id: RawId | None = None
    movie: Movie | None = None
    ignored: tuple[RawId, ...] = ()
    liked: tuple[RawId, ...] = ()
    disliked: tuple[RawId, ...] = ()
    liked_threshold: float | None = None

    @property
    def movie_ids(self) -> list[RawId]:
        """The answered movies' raw IDs, best first."""
        return [r.movie.movie_id for r in self.rows]

    def items_json(self) -> list[dict[str, Any]]:
        """The rows in their JSON form (the API's and the CLI's `items`)."""
        return [r.to_json() for r in self.rows]

    def to_json(self) -> dict[str, Any]:
        """The answer as JSON: `items` and, by kind, the subject and what happened to the input."""
        doc: dict[str, Any] = {}
        if self.kind == "user":
            doc["user_id"] = self.user_id
        elif self.kind == "similar":
            doc["movie"] = self.movie.to_json() if self.movie is not None else None
        else:
            doc.update(ignored=list(self.ignored), liked=list(self.liked), disliked=list(self.disliked),
                       liked_threshold=self.liked_threshold)
        doc.update(fallback=self.fallback, fallback_reason=self.fallback_reason, items=self.items_json())
        return doc


__all__ = ["Answer", "Row", "Movie", "plain", "finite"]
