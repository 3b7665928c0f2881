"""Where the service keeps answers it has given: in each worker's memory, or in Redis.

`movierec serve --cache memory` (the default) keeps answers in each worker process
(`MemoryCache`, one per loaded model version, at most `--cache-size` answers); `--cache
redis://HOST:PORT/DB` keeps them in one Redis (`RedisCache`) that every worker and every
replica shares, so an answer computed once is a hit everywhere.

A Redis key names the model version it answers for (`model_tag`: the name, the version and
the manifest, with the sha256 of every bundle file) and the whole query (`query_text`: subject, k, exclusions,
filters, liked threshold and the re-ranker's text form), so a promoted version never reads
the previous version's lists and two different questions never share an answer.

A Redis that cannot be reached never fails a request: the answer is computed instead, one
warning is logged when it goes away (or is not there at the first use), and it is tried
again after a growing pause (`BACKOFF_FIRST` doubling to `BACKOFF_MAX` seconds) until it
answers again. Short socket timeouts keep a hung Redis from stalling requests.

This module imports nothing heavy (`redis` is imported when a `RedisCache` is made), so the
settings can check a cache URL before the web stack loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from typing import Any, Hashable, Protocol
from urllib.parse import unquote, urlsplit

from movierec.errors import ConfigError

log = logging.getLogger("movierec.serving.cache")

#: the `--cache` value of the in-process memo (the default)
MEMORY = "memory"
#: URL schemes of a Redis cache (rediss: TLS)
REDIS_SCHEMES = ("redis", "rediss")
#: every key this service writes to Redis starts with this
KEY_PREFIX = "movierec:answer:"
#: seconds an answer lives in Redis (a version no longer served stops taking memory)
REDIS_TTL = 24 * 3600
#: seconds to connect to Redis, and to wait for one reply, before the answer is computed instead
SOCKET_TIMEOUT = 0.2
#: seconds before the first new try after Redis could not be reached; doubles up to BACKOFF_MAX
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0


def check_cache(value: Any) -> str:
    """`value` as a cache setting: "memory", or a Redis URL `redis://[:PASSWORD@]HOST[:PORT][/DB]`.

    Raises:
        ConfigError: anything else (one sentence with an example).
    """
    example = 'The answer cache must be "memory" or a Redis URL such as redis://127.0.0.1:6379/0'
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{example}; got {value!r}.")
    text = value.strip()
    if text == MEMORY:
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{example}; {_shown(text)!r} has no valid port (1 to 65535).") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(f"{example}; got {_shown(text)!r}.")
    if not parts.hostname:
        raise ConfigError(f"{example}; {_shown(text)!r} names no host.")
    if port == 0:
        raise ConfigError(f"{example}; {_shown(text)!r} has no valid port (1 to 65535).")
    db = parts.path.lstrip("/")
    if db and not (db.isdigit() and db.isascii()):
        raise ConfigError(f"{example}; the database number {db!r} must be a whole number (0 by default).")
    if parts.query or parts.fragment:
        raise ConfigError(f"{example}; drop the options after '?' or '#' in {_shown(text)!r}.")
    return text


def _shown(url: str) -> str:
    """`url` without its password (for logs, sentences and /health)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + host).geturl()


def _plain(value: Any) -> Any:
    """A query part as JSON-able values: dataclasses as {"type": name, field: value, ...}."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{f.name: _plain(getattr(value, f.name))
                                                 for f in dataclasses.fields(value)}}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        return value.item()
    return value


def query_text(query: Any) -> str:
    """The whole query (a `movierec.answers.Query`) as one canonical text: the subject
    with its IDs as the model spells them (1 and "1" differ), k, exclude_seen, the filters,
    the liked threshold and the re-ranker's text form (`str(rerank)`, e.g. "mmr:0.3")."""
    doc = {f.name: _plain(getattr(query, f.name)) for f in dataclasses.fields(query) if f.name != "rerank"}
    rerank = getattr(query, "rerank", None)
    doc["rerank"] = None if rerank is None else f"{type(rerank).__name__}:{rerank}"
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def model_tag(name: str, version: str | None, manifest: dict[str, Any]) -> str:
    """What identifies one model version in a shared cache: its name, version and whole
    manifest (the model, its config, its data's fingerprint, its creation time and the
    sha256 of every bundle file), so a bundle folder rewritten in place, or two registries
    with the same name and version, never share answers."""
    text = json.dumps({"name": name, "version": version, "manifest": manifest}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def answer_key(tag: str, query: Any) -> str:
    """The Redis key of `query`'s answer by the model version `tag` (see `model_tag`)."""
    digest = hashlib.blake2b(query_text(query).encode("utf-8"), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}{tag}:{digest}"


class AnswerCache(Protocol):
    """Somewhere to keep answers (JSON bytes) by key.

    Attributes:
        kind: "memory" or "redis".
        shared: whether other workers and replicas see the same entries (then keys must
            name the model version: see `answer_key`).
    """

    kind: str
    shared: bool

    def get(self, key: Hashable) -> bytes | None:
        """The answer kept under `key`, or None (never raises for an unreachable store)."""
        ...

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep `body` under `key` (never raises for an unreachable store)."""
        ...

    def status(self) -> dict[str, Any]:
        """{"kind", "url" (None for memory; without a password), "reachable", "entries"}."""
        ...


class MemoryCache:
    """At most `size` answers in this process, keyed by anything hashable; the oldest goes
    first (0: keeps nothing). One per loaded model version, so keys need not name it."""

    kind = MEMORY
    shared = False

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._answers: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable) -> bytes | None:
        return self._answers.get(key)

    def put(self, key: Hashable, body: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            while len(self._answers) >= self.size:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = body

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": None, "reachable": True, "entries": len(self)}


class RedisCache:
    """Answers kept in one Redis, shared by every worker and replica that names it.

    Keys are texts (`answer_key`); every answer expires after `ttl` seconds. A Redis that
    cannot be reached makes `get` answer None and `put` do nothing: one warning is logged
    when it goes away, it is tried again after `BACKOFF_FIRST` seconds, doubling up to
    `BACKOFF_MAX`, and the first success logs that it is back (at info level). Thread-safe.

    Args:
        url: redis://[:PASSWORD@]HOST[:PORT][/DB] (see `check_cache`).
        ttl: seconds an answer lives.
        timeout: seconds to connect and to wait for a reply.
    """

    kind = "redis"
    shared = True

    def __init__(self, url: str, *, ttl: int = REDIS_TTL, timeout: float = SOCKET_TIMEOUT) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = check_cache(url)
        if self.url == MEMORY:
            raise ConfigError("A Redis cache needs a redis:// URL, not \"memory\".")
        self.ttl = int(ttl)
        parts = urlsplit(self.url)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._client = redis.Redis(
            host=parts.hostname, port=parts.port or 6379, db=int(parts.path.lstrip("/") or 0),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            ssl=parts.scheme == "rediss", socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._lock = threading.Lock()
        self._down = False
        self._backoff = BACKOFF_FIRST
        self._retry_at = 0.0

    @property
    def shown_url(self) -> str:
        """The URL without its password."""
        return _shown(self.url)

    @property
    def reachable(self) -> bool:
        """Whether the last try reached Redis (True before the first try)."""
        return not self._down

    def _may_try(self) -> bool:
        """Whether to use Redis now: it is up, or its pause is over (then this caller is the
        one to try: the next pause starts now, so other threads keep computing meanwhile)."""
        if not self._down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._backoff
            return True

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            if not self._down:
                self._down = True
                self._backoff = BACKOFF_FIRST
                log.warning("The answer cache at %s cannot be reached (%s); answers are computed until it is back.",
                            self.shown_url, str(exc).rstrip(".") or type(exc).__name__)
            else:
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            self._retry_at = time.monotonic() + self._backoff

    def _worked(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    self._backoff = BACKOFF_FIRST
                    log.info("The answer cache at %s is reachable again.", self.shown_url)

    def get(self, key: Hashable) -> bytes | None:
        if not self._may_try():
            return None
        try:
            body = self._client.get(str(key))
        except self._errors as exc:
            self._failed(exc)
            return None
        self._worked()
        return body if isinstance(body, bytes) else None

    def put(self, key: Hashable, body: bytes) -> None:
        if not self._may_try():
            return
        try:
            self._client.set(str(key), body, ex=self.ttl)
        except self._errors as exc:
            self._failed(exc)
            return
        self._worked()

    def ping(self) -> bool:
        """Try Redis now (unless it is in its pause after a failure); whether it answered."""
        if not self._may_try():
            return False
        try:
            self._client.ping()
        except self._errors as exc:
            self._failed(exc)
            return False
        self._worked()
        return True

    def status(self) -> dict[str, Any]:
        """{"kind": "redis", "url" (without a password), "reachable" (pings it), "entries": None}."""
        return {"kind": self.kind, "url": self.shown_url, "reachable": self.ping(), "entries": None}

    def close(self) -> None:
        """Close the connections (a later use opens new ones)."""
        try:
            self._client.close()
        except self._errors:
            pass


def open_cache(setting: str) -> RedisCache | None:
    """The shared cache a `--cache` setting names: None for "memory" (each model version
    then keeps its own `MemoryCache`), a `RedisCache` for a Redis URL (it connects at its
    first use).

    Raises:
        ConfigError: for a setting `check_cache` refuses.
    """
    setting = check_cache(setting)
    return None if setting == MEMORY else RedisCache(setting)


__all__ = ["AnswerCache", "MemoryCache", "RedisCache", "open_cache", "check_cache", "answer_key", "query_text",
           "model_tag", "MEMORY", "KEY_PREFIX", "REDIS_TTL", "SOCKET_TIMEOUT", "BACKOFF_FIRST", "BACKOFF_MAX"]
