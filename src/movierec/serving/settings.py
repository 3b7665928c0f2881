"""The service's settings: one frozen `ServeSettings`, read once and handed to every worker.

`movierec serve` builds it from its flags and the environment (the admin token comes
from `MOVIEREC_ADMIN_TOKEN`, never from a flag, so it stays out of `ps`), loads the model
once in the parent process to check it, and, with several workers, puts the whole object
into one environment variable, `MOVIEREC_SERVE_SETTINGS` (JSON, see `to_json`), that the
app factory reads back in each worker: every worker gets the same source, model name,
feedback database, admin token, answer cache, cache size, threads, watch interval, body limit
and experiment files.

This module imports nothing heavy (no FastAPI, numpy or models), so the CLI can build
the settings before the web stack is loaded.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from movierec.errors import ConfigError
from movierec.serving.cache import MEMORY, check_cache

#: the environment variable holding the admin token (None or empty: admin disabled)
TOKEN_ENV = "MOVIEREC_ADMIN_TOKEN"
#: the environment variable carrying the whole settings object to uvicorn's workers
SETTINGS_ENV = "MOVIEREC_SERVE_SETTINGS"
#: GET /recommend (and /similar) answers kept per loaded model version (0: none)
CACHE_SIZE = 20_000
#: request bodies larger than this are refused with 413
MAX_BODY_BYTES = 1 << 20
#: seconds between looks at the registry's pointer
WATCH_INTERVAL = 0.5
#: BLAS/OpenMP (and torch) threads per worker process
THREADS = 1


def _whole(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"The {what} must be a whole number >= {low}, got {value!r}.")
    return value


@dataclass(frozen=True)
class ServeSettings:
    """Everything a worker needs to serve (immutable; build a new one to change it).

    Attributes:
        source: a registry folder, or a single bundle folder (then promote and rollback
            answer 409).
        model: the registry name to serve (None: the registry's only name; a registry
            holding several names is refused without one).
        feedback_db: the SQLite file of people's ratings (None:
            `<registry>/feedback.sqlite3`, or beside a bundle folder).
        admin_token: the bearer token of the /admin routes (None: admin disabled).
            Never shown by `repr`.
        cache: where answers are kept: "memory" (each worker's own, at most `cache_size`
            per loaded model version) or a Redis URL `redis://HOST:PORT/DB` shared by every
            worker and replica (`movierec.serving.cache`). Its password, if any, is never
            shown by `repr`.
        cache_size: GET /recommend and /similar answers kept per loaded model version
            in each worker's memory (0: no answer cache, in memory or in Redis).
        threads: BLAS/OpenMP (and torch) threads per worker while serving; one request
            is one small product, and several threads per request fight over the cores.
            None leaves the libraries' own setting.
        watch_interval: seconds between looks at the registry's pointer (0: never look).
        max_body_bytes: larger request bodies are refused with 413.
        experiments: A/B experiment files (`movierec.serving.ab`; several only with time
            windows that do not overlap); () runs none.

    Raises:
        ConfigError: for a value out of range (one sentence naming it).
    """

    source: Path
    model: str | None = None
    feedback_db: Path | None = None
    admin_token: str | None = field(default=None, repr=False)
    cache: str = field(default=MEMORY, repr=False)
    cache_size: int = CACHE_SIZE
    threads: int | None = THREADS
    watch_interval: float = WATCH_INTERVAL
    max_body_bytes: int = MAX_BODY_BYTES
    experiments: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.source, (str, os.PathLike)) or not str(self.source):
            raise ConfigError(f"Name a registry or bundle folder to serve, got {self.source!r}.")
        object.__setattr__(self, "source", Path(self.source))
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ConfigError(f"The model name must be a non-empty text, got {self.model!r}.")
        if self.feedback_db is not None:
            if not isinstance(self.feedback_db, (str, os.PathLike)) or not str(self.feedback_db):
                raise ConfigError(f"The feedback database must be a file path, got {self.feedback_db!r}.")
            object.__setattr__(self, "feedback_db", Path(self.feedback_db))
        if self.admin_token is not None and not isinstance(self.admin_token, str):
            raise ConfigError("The admin token must be text.")
        object.__setattr__(self, "admin_token", self.admin_token or None)
        object.__setattr__(self, "cache", check_cache(self.cache))
        _whole(self.cache_size, "answer cache size", 0)
        if self.threads is not None:
            _whole(self.threads, "number of compute threads", 1)
        interval = self.watch_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval) \
                or interval < 0:
            raise ConfigError(f"The watch interval must be a number of seconds >= 0, got {interval!r}.")
        object.__setattr__(self, "watch_interval", float(interval))
        _whole(self.max_body_bytes, "body size limit", 1)
        files = self.experiments
        if isinstance(files, (str, os.PathLike)) or not isinstance(files, (tuple, list)) \
                or not all(isinstance(f, (str, os.PathLike)) and str(f) for f in files):
            raise ConfigError(f"The experiments must be a list of experiment file paths, got {files!r}.")
        object.__setattr__(self, "experiments", tuple(Path(f) for f in files))

    @classmethod
    def from_environment(cls, source: str | Path, environ: Mapping[str, str] | None = None,
                         **values: Any) -> "ServeSettings":
        """Settings for `source` with `values`, the admin token read from
        `MOVIEREC_ADMIN_TOKEN` unless `admin_token` is among them."""
        env = os.environ if environ is None else environ
        if "admin_token" not in values:
            values["admin_token"] = env.get(TOKEN_ENV) or None
        return cls(source=source, **values)

    def default_feedback_db(self, is_registry: bool) -> Path:
        """`feedback_db`, or its default: inside a registry folder, beside a bundle folder."""
        if self.feedback_db is not None:
            return self.feedback_db
        return (self.source if is_registry else self.source.parent) / "feedback.sqlite3"

    def to_json(self) -> str:
        """The settings as one line of JSON (paths as text), for `MOVIEREC_SERVE_SETTINGS`.
        It holds the admin token: keep it where the token itself may be kept."""
        values = asdict(self)
        values["source"] = str(self.source)
        values["feedback_db"] = None if self.feedback_db is None else str(self.feedback_db)
        values["experiments"] = [str(f) for f in self.experiments]
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        """The settings `to_json` wrote.

        Raises:
            ConfigError: for text that is not such an object (unknown or missing fields,
                values out of range).
        """
        try:
            values = json.loads(text)
        except ValueError:
            raise ConfigError(f"{SETTINGS_ENV} is not valid JSON; start the service with `movierec serve`.") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{SETTINGS_ENV} must hold a JSON object of the service's settings.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{SETTINGS_ENV} has unknown settings: {', '.join(unknown)}.")
        if "source" not in values:
            raise ConfigError(f"{SETTINGS_ENV} names no registry or bundle folder (\"source\").")
        return cls(**values)

    @classmethod
    def from_env_variable(cls, environ: Mapping[str, str] | None = None) -> "ServeSettings":
        """The settings in `MOVIEREC_SERVE_SETTINGS` (what `movierec serve` hands its workers).

        Raises:
            ConfigError: when the variable is unset or does not hold valid settings.
        """
        env = os.environ if environ is None else environ
        text = env.get(SETTINGS_ENV)
        if not text:
            raise ConfigError(f"Set {SETTINGS_ENV} to the service's settings "
                              "(`movierec serve` does it for its workers).")
        return cls.from_json(text)

    def to_env(self) -> dict[str, str]:
        """{`MOVIEREC_SERVE_SETTINGS`: these settings}, to add to a worker's environment."""
        return {SETTINGS_ENV: self.to_json()}


__all__ = ["ServeSettings", "CACHE_SIZE", "MAX_BODY_BYTES", "WATCH_INTERVAL", "THREADS", "SETTINGS_ENV", "TOKEN_ENV"]
