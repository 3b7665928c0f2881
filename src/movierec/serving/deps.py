"""What the routes depend on, as `Annotated[..., Depends(...)]` aliases.

`Served` is the model version serving now, read once per request (FastAPI resolves a
dependency once per request and hands every user the same value), so one answer comes
from one version however often the model is swapped meanwhile. `Server`, `Store` and
`Settings` are the app's `ModelServer`, `FeedbackStore` and `ServeSettings` (kept on
`app.state` by `create_app`); `require_admin` guards the /admin routes (a dependency of
the whole admin router, so no admin route can go without it). `Experiments` is the app's
`movierec.serving.ab.ExperimentRunner`: the routes answering a person's list ask it, so
the answer names its variant and is logged while an experiment runs. The dependencies are
`async` functions: FastAPI runs them on the event loop, not in its thread pool.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from movierec.data.feedback import FeedbackStore
from movierec.serving.ab import ExperimentRunner
from movierec.serving.server import ModelServer
from movierec.serving.settings import TOKEN_ENV, ServeSettings
from movierec.serving.state import ServedModel


class ApiError(Exception):
    """An error answered as {"detail": message} with HTTP `status` (and `headers`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


async def served_model(request: Request) -> ServedModel:
    """The model version serving now (`ModelServer.current`), taken once per request."""
    return request.app.state.server.current


async def model_server(request: Request) -> ModelServer:
    """The app's `ModelServer` (loads, swaps, promotes, rolls back, watches)."""
    return request.app.state.server


async def feedback_store(request: Request) -> FeedbackStore:
    """The app's store of people's ratings."""
    return request.app.state.store


async def serve_settings(request: Request) -> ServeSettings:
    """The settings the app was created with (model name and feedback file resolved)."""
    return request.app.state.settings


async def experiment_runner(request: Request) -> ExperimentRunner:
    """The app's A/B experiments (answers a person's list from their variant, logs it)."""
    return request.app.state.experiments


Served = Annotated[ServedModel, Depends(served_model)]
Server = Annotated[ModelServer, Depends(model_server)]
Store = Annotated[FeedbackStore, Depends(feedback_store)]
Settings = Annotated[ServeSettings, Depends(serve_settings)]
Experiments = Annotated[ExperimentRunner, Depends(experiment_runner)]


async def require_admin(request: Request, settings: Settings) -> None:
    """Let the request through only with `Authorization: Bearer <the admin token>`.

    Raises:
        ApiError: 404 when admin is disabled (no token set), 401 without a bearer token,
            403 for a wrong one (compared in constant time).
    """
    if settings.admin_token is None:
        raise ApiError(404, f"Admin is disabled; set {TOKEN_ENV} to enable it.")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "Admin needs an Authorization: Bearer token.", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode("utf-8"), settings.admin_token.encode("utf-8")):
        raise ApiError(403, "The admin token is wrong.")


__all__ = ["ApiError", "Served", "Server", "Store", "Settings", "Experiments", "require_admin", "served_model",
           "model_server", "feedback_store", "serve_settings", "experiment_runner"]
