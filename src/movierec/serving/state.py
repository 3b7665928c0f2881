"""The served model: one immutable `ServedModel`, everything one model version answers.

A `ServedModel` holds a loaded bundle with its name and version, the answer layer built on
it once (`movierec.answers.Answerer`: counts, movie records, reasons, the title index,
taste groups, the stored retrieval index) and a bounded memo of answers. It speaks the
model's own IDs: whole numbers for a model trained on whole-number IDs, text otherwise
(`movie_id`/`user_id` read an ID given to the API as the model's kind). Every route asks
the answer layer through it: a request takes `ModelServer.current`
(`movierec.serving.server`, which loads, swaps and watches) once and uses nothing else, so
each answer comes from exactly one version, however often the model is swapped meanwhile.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from movierec.answers import DEFAULT_GROUPS, Answerer, KnownUser, NewPerson, Query, SimilarTo, TasteGroup
from movierec.answers.query import RawId
from movierec.artifacts import Bundle
from movierec.errors import ConfigError
from movierec.serving.cache import AnswerCache, MemoryCache, answer_key, model_tag
from movierec.serving.schemas import MAX_ID_CHARS
from movierec.serving.settings import CACHE_SIZE  # answers kept per loaded model (0: none)

#: longest list whose answer is memoised
CACHE_MAX_K = 100


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


_INT_TEXT = re.compile(r"^-?[0-9]{1,19}$")
_INT64 = (-(2**63), 2**63 - 1)


def id_kind(raw: np.ndarray, what: str) -> str:
    """"int" for whole-number raw IDs, "str" for text ones; ConfigError for text IDs longer
    than the API takes (`schemas.MAX_ID_CHARS`: such a movie or user could never be asked about)."""
    if raw.dtype.kind in "iu":
        return "int"
    longest = int(np.char.str_len(raw.astype(str)).max()) if len(raw) else 0
    if longest > MAX_ID_CHARS:
        raise ConfigError(f"This model's {what} IDs run to {longest} characters, but the service takes IDs of at "
                          f"most {MAX_ID_CHARS}.")
    return "str"


def parse_id(value: Any, kind: str, what: str, *, text: bool) -> RawId:
    """An ID given to the API as the model's kind spells it.

    Args:
        value: the ID as given: an int or a str.
        kind: the model's ID kind, "int" or "str".
        what: "movie" or "user" (for the sentence).
        text: the ID comes from a URL (a query or path parameter, always text): "42" is
            read as 42 for whole-number IDs. A JSON body's text is never a whole number,
            as before text IDs were served.

    Raises:
        ConfigError: text that is no whole number of 64 bits for a model with whole-number IDs.
    """
    if kind == "int":
        if type(value) is int:
            if _INT64[0] <= value <= _INT64[1]:
                return value
        elif text and isinstance(value, str) and _INT_TEXT.match(value.strip()):
            number = int(value)
            if _INT64[0] <= number <= _INT64[1]:
                return number
        shown = repr(value[:40]) if isinstance(value, str) else str(value)[:40]
        if isinstance(value, str) and not text:
            raise ConfigError(f"This model's {what} IDs are whole numbers: give them as JSON numbers, not text "
                              f"such as {shown}.")
        raise ConfigError(f"This model's {what} IDs are whole numbers of 64 bits; got {shown}.")
    return value if isinstance(value, str) else str(value)


def _stored_index(bundle: Bundle):
    """The bundle's retrieval index (`movierec.retrieval.stored_index`), or None when it
    holds none; FAISS is imported only for a bundle with extra files."""
    if not bundle.extras:
        return None
    from movierec.retrieval import stored_index

    return stored_index(bundle)


def _dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: several times faster than the standard library's)."""
    return orjson.dumps(doc)


class AnswerMemo:
    """One model version's answers (JSON bytes) keyed by their whole query, with this
    worker's hit and miss counts.

    Without a shared cache, at most `size` answers are kept in this process (a
    `MemoryCache`; the oldest goes first). With one (`movierec.serving.cache.RedisCache`),
    answers live there under `answer_key(tag, query)`: the model version (`tag`) and the
    whole query, so every worker and replica shares them and another version never reads
    them. `size` 0 keeps nothing in either case.

    Only answers that cannot change while the model version does are kept (the caller's
    choice: known users' lists and similar movies), of lists up to CACHE_MAX_K long.
    """

    def __init__(self, size: int, shared: AnswerCache | None = None, tag: str = "") -> None:
        self.size = int(size)
        self.shared = shared
        self.tag = tag
        self.cache: AnswerCache = shared if shared is not None else MemoryCache(self.size)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Answers kept in this process (0 with a shared cache: they live there)."""
        return len(self.cache) if isinstance(self.cache, MemoryCache) else 0

    def keeps(self, query: Query) -> bool:
        """Whether `query`'s answer is looked up and kept at all."""
        return self.size > 0 and query.k <= CACHE_MAX_K

    def _key(self, query: Query) -> Any:
        return query if self.shared is None else answer_key(self.tag, query)

    def get(self, query: Query) -> bytes | None:
        """The kept answer to `query`, or None (counted as a hit or a miss when it is kept at all)."""
        if not self.keeps(query):
            return None
        body = self.cache.get(self._key(query))
        with self._lock:
            if body is None:
                self.misses += 1
            else:
                self.hits += 1
        return body

    def put(self, query: Query, body: bytes) -> None:
        if self.keeps(query):
            self.cache.put(self._key(query), body)

    def status(self) -> dict[str, Any]:
        """Which cache keeps the answers and whether it is reachable (`AnswerCache.status`),
        with this worker's hits and misses for this model version and the size setting."""
        return {**self.cache.status(), "size": self.size, "hits": self.hits, "misses": self.misses}


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded model version and the answer layer built on it (never changed once built).

    Attributes:
        bundle: the loaded bundle.
        name: the registry name (or the model's name for a bundle folder).
        version: the registry version, None for a bundle folder outside a registry.
        loaded_at: UTC time it was loaded.
        answers: the answer layer over this version (and its stored retrieval index).
        memo: answers kept for repeated questions (see `AnswerMemo`).
    """

    bundle: Bundle
    name: str
    version: str | None
    loaded_at: str
    answers: Answerer
    memo: AnswerMemo = field(repr=False)
    movie_id_kind: str = "int"
    user_id_kind: str = "int"

    @classmethod
    def build(cls, bundle: Bundle, name: str, version: str | None, *, cache_size: int = CACHE_SIZE,
              shared_cache: AnswerCache | None = None) -> "ServedModel":
        """Build the answer layer for a loaded bundle.

        Args:
            cache_size: answers kept (see `AnswerMemo`; 0: none).
            shared_cache: where answers are kept across workers and replicas (a
                `RedisCache`, keyed by this version), or None: in this process.

        Raises:
            ConfigError: text IDs longer than the API takes (see `id_kind`).
        """
        model = bundle.model
        movie_kind = id_kind(np.asarray(model.items_.raw_ids), "movie")
        user_kind = id_kind(np.asarray(model.users_.raw_ids), "user")
        return cls(bundle=bundle, name=name, version=version, loaded_at=_now(),
                   answers=Answerer(bundle, _stored_index(bundle)),
                   memo=AnswerMemo(cache_size, shared_cache, model_tag(name, version, bundle.manifest)),
                   movie_id_kind=movie_kind, user_id_kind=user_kind)

    # -- basics -------------------------------------------------------------------------
    @property
    def model(self):
        return self.bundle.model

    @property
    def cache_size(self) -> int:
        return self.memo.size

    @property
    def ref(self) -> dict[str, Any]:
        """{"name", "version"}: the version every answer names (one dict per version: read it, never change it)."""
        ref = self.__dict__.get("_ref")
        if ref is None:
            ref = {"name": self.name, "version": self.version}
            object.__setattr__(self, "_ref", ref)
        return ref

    @property
    def capabilities(self) -> list[str]:
        """The model's declared capabilities, and "retrieval_index" when an index answers."""
        return self.model.capabilities.names() + (["retrieval_index"] if self.answers.index is not None else [])

    # -- IDs ------------------------------------------------------------------------------
    def movie_id(self, value: Any, *, text: bool = False) -> RawId:
        """A movie ID given to the API as the model spells it (see `parse_id`; `text` for a
        URL's). Raises ConfigError (a 422) for text given to a model with whole-number IDs."""
        return parse_id(value, self.movie_id_kind, "movie", text=text)

    def user_id(self, value: Any, *, text: bool = False) -> RawId:
        """A user ID given to the API as the model spells it (see `movie_id`)."""
        return parse_id(value, self.user_id_kind, "user", text=text)

    def profile_user(self, profile: str, newest: int | None) -> RawId | None:
        """The known user a feedback profile was trained as, or None.

        A version trained by `movierec retrain` maps the profiles whose ratings it learned
        from to its users (`manifest["feedback"]["profiles"]`, with "until": the newest
        rating used, Unix seconds). The profile is that user while none of its stored
        ratings is newer (`newest`: its newest rating's time, None for none); after a newer
        rating, or for a user the model does not hold, it is a new person again.
        """
        feedback = self.bundle.manifest.get("feedback")
        if not isinstance(feedback, dict):
            return None
        profiles, until = feedback.get("profiles"), feedback.get("until")
        if not isinstance(profiles, dict) or profile not in profiles or type(until) is not int:
            return None
        if newest is not None and newest > until:
            return None
        try:
            user = self.user_id(profiles[profile], text=True)
        except ConfigError:
            return None
        return user if self.model.users_.position(user) >= 0 else None

    # -- answers --------------------------------------------------------------------------
    def answer(self, query: Query) -> dict[str, Any]:
        """The answer to `query` as the API's JSON object, naming this version (and no A/B
        variant: `movierec.serving.ab.ExperimentRunner` names it inside an experiment)."""
        return {"model": self.ref, "variant": None, **self.answers.answer(query).to_json()}

    def answer_bytes(self, query: Query) -> bytes:
        """The answer to `query` as JSON bytes; known users' and similar movies' answers are
        memoised per model version and whole query (k, exclusions, filters and re-ranker
        included), in this process or in the shared cache (see `AnswerMemo`)."""
        if isinstance(query.subject, (KnownUser, SimilarTo)):
            hit = self.memo.get(query)
            if hit is not None:
                return hit
            body = _dumps(self.answer(query))
            self.memo.put(query, body)
            return body
        return _dumps(self.answer(query))

    def recommend_json(self, user_id: RawId, k: int, exclude_seen: bool = True) -> bytes:
        """The plain GET /recommend answer (no filters) as JSON bytes (`user_id` as the URL gives it)."""
        return self.answer_bytes(Query(KnownUser(self.user_id(user_id, text=True)), k=k, exclude_seen=exclude_seen))

    def similar_json(self, movie_id: RawId, k: int) -> bytes:
        """The plain GET /similar/{movie_id} answer (no filters) as JSON bytes."""
        return self.answer_bytes(Query(SimilarTo(self.movie_id(movie_id, text=True)), k=k))

    def cold_json(self, liked: tuple[RawId, ...], k: int) -> bytes:
        """The plain GET /recommend_cold answer (liked movies, no filters) as JSON bytes."""
        return self.answer_bytes(Query(NewPerson(liked=tuple(self.movie_id(m, text=True) for m in liked)), k=k))

    def groups(self, n_groups: int) -> list[TasteGroup]:
        """Taste groups (computed once per model and group count, seeded)."""
        return self.answers.groups(n_groups)


__all__ = ["ServedModel", "AnswerMemo", "CACHE_SIZE", "DEFAULT_GROUPS", "id_kind", "parse_id"]
