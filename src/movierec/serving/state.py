"""The served model: one immutable `ServedModel`, everything one model version answers.

A `ServedModel` holds a loaded bundle with its name and version, the answer layer built on
it once (`movierec.answers.Answerer`: counts, movie records, reasons, the title index,
taste groups, the stored retrieval index) and a bounded memo of answers. Every route asks
the answer layer through it: a request takes `ModelServer.current`
(`movierec.serving.server`, which loads, swaps and watches) once and uses nothing else, so
each answer comes from exactly one version, however often the model is swapped meanwhile.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from movierec.answers import DEFAULT_GROUPS, Answerer, KnownUser, NewPerson, Query, SimilarTo, TasteGroup
from movierec.artifacts import Bundle
from movierec.errors import ConfigError
from movierec.serving.settings import CACHE_SIZE  # answers kept per loaded model (0: none)

#: longest list whose answer is memoised
CACHE_MAX_K = 100


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _int_ids(raw: np.ndarray, kind: str) -> None:
    """Refuse text IDs: the API's IDs are whole numbers."""
    if raw.dtype.kind in "iu":
        return
    try:
        [int(x) for x in raw]
    except (TypeError, ValueError):
        raise ConfigError(f"The service answers in whole-number {kind} IDs, but this model's {kind} IDs are text.") from None


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
    """At most `size` answers (JSON bytes) keyed by their whole query; the oldest goes first.

    Only answers that cannot change while the model version does are kept: known users'
    lists and similar movies (a new person's list depends on what they give).
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._answers: dict[Query, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, query: Query) -> bytes | None:
        return self._answers.get(query)

    def put(self, query: Query, body: bytes) -> None:
        if self.size <= 0 or query.k > CACHE_MAX_K or query.rerank is not None:
            return
        with self._lock:
            while len(self._answers) >= self.size:
                self._answers.pop(next(iter(self._answers)))
            self._answers[query] = body


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

    @classmethod
    def build(cls, bundle: Bundle, name: str, version: str | None, *, cache_size: int = CACHE_SIZE) -> "ServedModel":
        """Build the answer layer for a loaded bundle (IDs must be whole numbers)."""
        model = bundle.model
        _int_ids(np.asarray(model.items_.raw_ids), "movie")
        _int_ids(np.asarray(model.users_.raw_ids), "user")
        return cls(bundle=bundle, name=name, version=version, loaded_at=_now(),
                   answers=Answerer(bundle, _stored_index(bundle)), memo=AnswerMemo(cache_size))

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

    # -- answers --------------------------------------------------------------------------
    def answer(self, query: Query) -> dict[str, Any]:
        """The answer to `query` as the API's JSON object, naming this version."""
        return {"model": self.ref, **self.answers.answer(query).to_json()}

    def answer_bytes(self, query: Query) -> bytes:
        """The answer to `query` as JSON bytes; known users' and similar movies' answers are
        memoised per whole query (k, exclusions and filters included)."""
        if isinstance(query.subject, (KnownUser, SimilarTo)):
            hit = self.memo.get(query)
            if hit is not None:
                return hit
            body = _dumps(self.answer(query))
            self.memo.put(query, body)
            return body
        return _dumps(self.answer(query))

    def recommend_json(self, user_id: int, k: int, exclude_seen: bool = True) -> bytes:
        """The plain GET /recommend answer (no filters) as JSON bytes."""
        return self.answer_bytes(Query(KnownUser(user_id), k=k, exclude_seen=exclude_seen))

    def similar_json(self, movie_id: int, k: int) -> bytes:
        """The plain GET /similar/{movie_id} answer (no filters) as JSON bytes."""
        return self.answer_bytes(Query(SimilarTo(movie_id), k=k))

    def cold_json(self, liked: tuple[int, ...], k: int) -> bytes:
        """The plain GET /recommend_cold answer (liked movies, no filters) as JSON bytes."""
        return self.answer_bytes(Query(NewPerson(liked=liked), k=k))

    def groups(self, n_groups: int) -> list[TasteGroup]:
        """Taste groups (computed once per model and group count, seeded)."""
        return self.answers.groups(n_groups)


__all__ = ["ServedModel", "AnswerMemo", "CACHE_SIZE", "DEFAULT_GROUPS"]
