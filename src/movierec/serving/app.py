"""The FastAPI application: `create_app(settings) -> FastAPI` (see docs for the HTTP API).

`create_app` only assembles: it loads the model (`ModelServer`), opens the feedback store,
and adds the error handlers (`error_handlers`), the middlewares (`BodyLimit`,
`AnswerFastPath`), the routers (`movierec.serving.routes`, one per resource), the offline
API docs (`api_docs`: /docs) and the lifespan (threads, the registry watcher). Every
handler takes the served model once (`deps.Served`) and answers from it alone, naming its
version. Bad input gets a 4xx JSON answer `{"detail": "<one sentence>", "errors": [...]}`
(`errors` only for bad parameters or a bad body): 404 for an unknown user, movie or path,
405 for a method a path does not take, 422 for bad parameters (a NaN or an infinity in a
JSON body included), 401/403 for admin without the right token, 409 for a model that
cannot be loaded or a move the registry cannot make, 413 for a body over the size limit.
The /admin routes are left out of the OpenAPI schema (and /docs) when admin is disabled.

`app_from_env` is the factory uvicorn imports in each worker of `movierec serve
--workers N`: it reads the whole `ServeSettings` from `MOVIEREC_SERVE_SETTINGS`.
"""

from __future__ import annotations

import enum
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI

from movierec.data.feedback import FeedbackStore
from movierec.errors import ConfigError
from movierec.serving.ab import open_runner
from movierec.serving.api_docs import add_docs
from movierec.serving.cache import open_cache
from movierec.serving.error_handlers import add_error_handlers
from movierec.serving.middleware import BodyLimit, AnswerFastPath
from movierec.serving.routes import ROUTERS, admin
from movierec.serving.routes.page import mount_static
from movierec.serving.server import ModelServer
from movierec.serving.settings import CACHE_SIZE, MAX_BODY_BYTES, THREADS, WATCH_INTERVAL, ServeSettings


class _Unset(enum.Enum):
    UNSET = "unset"


_UNSET = _Unset.UNSET


def _settings(source: ServeSettings | str | Path, model: str | None, options: dict[str, Any]) -> ServeSettings:
    """The settings `create_app` was given, or built from its convenience arguments (the
    admin token read from MOVIEREC_ADMIN_TOKEN unless given)."""
    given = {key: value for key, value in options.items() if value is not _UNSET}
    if isinstance(source, ServeSettings):
        if model is not None or given:
            raise ConfigError("Give create_app either a ServeSettings or a registry folder with options, not both.")
        return source
    defaults = {"cache_size": CACHE_SIZE, "threads": THREADS, "watch_interval": WATCH_INTERVAL,
                "max_body_bytes": MAX_BODY_BYTES}
    return ServeSettings.from_environment(source, model=model, **{**defaults, **given})


def create_app(settings: ServeSettings | str | Path, model: str | None = None, *,
               feedback_db: str | Path | None | _Unset = _UNSET, admin_token: str | None | _Unset = _UNSET,
               watch_interval: float | _Unset = _UNSET, cache_size: int | _Unset = _UNSET,
               max_body_bytes: int | _Unset = _UNSET, compute_threads: int | None | _Unset = _UNSET) -> FastAPI:
    """The movierec service over a registry's current version of one model name.

    Args:
        settings: the service's `ServeSettings`; or, as a convenience, a registry folder
            (or a single bundle folder) with the keyword arguments below, which build them.
        model: the registry name to serve (may be left out when the registry holds one name).
        feedback_db: the SQLite file of people's ratings (default:
            `<registry>/feedback.sqlite3`; beside a bundle folder for a bundle).
        admin_token: the bearer token of /admin routes (default: the
            MOVIEREC_ADMIN_TOKEN variable); None or empty disables admin.
        watch_interval: seconds between looks at the registry's pointer (0: never look).
        cache_size: GET /recommend answers cached per loaded model version (0: none).
        max_body_bytes: larger request bodies are refused with 413.
        compute_threads: BLAS (and torch) threads per worker process while serving
            (`ServeSettings.threads`); None leaves them as they are.

    The app keeps its `ServeSettings` (with the model name and feedback file resolved),
    `ModelServer` and `FeedbackStore` on `app.state.settings`, `.server` and `.store`.

    Raises:
        RegistryError, BundleError: when there is no model to serve, or a registry holding several
            names is given no `model` (the message says why).
        ConfigError: for a setting out of range, or settings given twice.
    """
    settings = _settings(settings, model, {"feedback_db": feedback_db, "admin_token": admin_token,
                                           "watch_interval": watch_interval, "cache_size": cache_size,
                                           "max_body_bytes": max_body_bytes, "threads": compute_threads})
    server = ModelServer(settings.source, settings.model, cache_size=settings.cache_size,
                         cache=open_cache(settings.cache))
    served = server.current  # the feedback database records (and must match) the model's scale and movie ID kind
    store = FeedbackStore(settings.default_feedback_db(server.registry is not None),
                          scale=served.answers.rating_scale, id_kind=served.movie_id_kind)
    settings = replace(settings, model=server.name, feedback_db=store.path)
    try:  # A/B experiments: their variants' versions loaded, their lists logged beside the ratings
        experiments = open_runner(settings.experiments, store.path, server.served_version, server.pin)
    except BaseException:
        store.close()
        raise

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        server.limit_threads(settings.threads)
        server.start_watching(settings.watch_interval)
        try:
            yield
        finally:
            server.stop_watching()
            store.close()
            if experiments.log is not None:
                experiments.log.close()

    app = FastAPI(title="movierec", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Movie recommendations from a trained movierec model: for known users, new people "
                              "(cold start), similar movies, title search, taste groups and stored ratings.")
    app.state.settings = settings
    app.state.server = server
    app.state.store = store
    app.state.experiments = experiments

    add_error_handlers(app)
    for router in ROUTERS:
        # admin's routes answer 404 "Admin is disabled" without a token, and are not documented then
        app.include_router(router, include_in_schema=router is not admin.router or settings.admin_token is not None)
    mount_static(app)
    add_docs(app, "movierec")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if not experiments.experiments:  # inside an experiment every list is bucketed and logged by its route
        app.add_middleware(AnswerFastPath, server=server)
    return app


def _version() -> str:
    from movierec import __version__

    return __version__


def app_from_env() -> FastAPI:
    """The app of the `ServeSettings` in MOVIEREC_SERVE_SETTINGS: the factory uvicorn
    imports in each worker of `movierec serve --workers N` (which sets the variable)."""
    return create_app(ServeSettings.from_env_variable())


__all__ = ["create_app", "app_from_env", "ServeSettings", "MAX_BODY_BYTES"]
