"""The FastAPI application: `create_app(registry) -> FastAPI` (see docs for the HTTP API).

Every handler takes the served model once (`ModelServer.current`) and answers from it
alone, naming its version. Bad input gets a 4xx JSON answer: 404 for an unknown user
or movie, 422 for bad parameters, 401/403 for admin without the right token, 409 for a
model that cannot be loaded or a move the registry cannot make, 413 for a body over the
size limit.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import Body, Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from movierec.errors import BundleError, MovierecError, RegistryError, UnknownIdError
from movierec.serving import schemas as s
from movierec.serving.state import CACHE_SIZE, ModelServer, ServedModel
from movierec.serving.store import FeedbackStore

log = logging.getLogger("movierec.serving")

WEB_DIR = Path(__file__).resolve().parent / "web"
#: request bodies larger than this are refused with 413
MAX_BODY_BYTES = 1 << 20
_ENV = object()  # "read MOVIEREC_ADMIN_TOKEN"
ProfileQuery = Annotated[str, Query(pattern=s.PROFILE_PATTERN, description="The browser's profile token.")]

_ERR = {"model": s.ErrorBody}
ERRORS_404 = {400: _ERR, 404: _ERR, 413: _ERR, 422: _ERR}
ERRORS_ADMIN = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 413: _ERR, 422: _ERR}


class ApiError(Exception):
    """An error answered as {"detail": message} with `status`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _status_of(exc: MovierecError) -> int:
    if isinstance(exc, UnknownIdError):
        return 404
    if isinstance(exc, BundleError):  # RegistryError included: a move the registry refuses
        return 409
    return 422


class BodyLimit:
    """ASGI middleware refusing request bodies over `limit` bytes with 413 (declared or streamed)."""

    def __init__(self, app: Callable, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"The request body is larger than {self.limit} bytes."
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
                    return
        received = 0
        too_large = False
        started = False

        async def limited() -> dict:
            nonlocal received, too_large
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _TooLarge()
            return event

        async def guarded_send(event: dict) -> None:
            nonlocal started
            if too_large:  # the app's answer to a cut-off body is replaced by 413
                return
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


_INT64 = re.compile(r"^-?[0-9]{1,19}$")


def _recommend_query(query: bytes) -> tuple[int, int, bool] | None:
    """(user_id, k, exclude_seen) of a plain, valid GET /recommend query, else None (the
    route then parses it and answers any error)."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not set(params) <= {"user_id", "k", "exclude_seen"}:
        return None
    user, k, exclude = params.get("user_id", ""), params.get("k", "10"), params.get("exclude_seen", "true")
    if not _INT64.match(user) or not -(2**63) <= int(user) < 2**63 or not k.isdigit() or len(k) > 4:
        return None
    if not 1 <= int(k) <= s.MAX_K or exclude not in ("true", "false"):
        return None
    return int(user), int(k), exclude == "true"


class RecommendFastPath:
    """ASGI middleware answering a plain, valid `GET /recommend` straight from the served
    model's answer cache, without FastAPI's parameter machinery (the same bytes the route
    answers, several times faster). Anything else -- other parameters, an unknown user --
    goes on to the route, which validates it and answers errors as usual."""

    def __init__(self, app: Callable, server: ModelServer):
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/recommend":
            parsed = _recommend_query(scope.get("query_string", b""))
            if parsed is not None:
                try:
                    body = self.server.current.recommend_json(*parsed)
                except MovierecError:
                    body = None
                if body is not None:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode("ascii"))]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def _parse_ids(text: str, what: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > s.MAX_INPUT_MOVIES:
        raise ApiError(422, f"Give at most {s.MAX_INPUT_MOVIES} {what}.")
    ids = []
    for p in parts:
        try:
            value = int(p)
        except ValueError:
            raise ApiError(422, f"{what.capitalize()} must be whole numbers separated by commas; got {p[:40]!r}.") from None
        if not -(2**63) <= value < 2**63:
            raise ApiError(422, f"{p[:40]} is not a movie ID.")
        ids.append(value)
    return ids


def create_app(registry: str | Path, model: str | None = None, *, feedback_db: str | Path | None = None,
               admin_token: Any = _ENV, watch_interval: float = 0.5, cache_size: int = CACHE_SIZE,
               max_body_bytes: int = MAX_BODY_BYTES, compute_threads: int | None = 1) -> FastAPI:
    """The movierec service over a registry's current version of model `model`.

    Args:
        registry: a registry folder (or a single bundle folder: then promote and
            rollback answer 409).
        model: the registry name to serve (default: the registry's first name).
        feedback_db: the SQLite file of people's ratings (default:
            `<registry>/feedback.sqlite3`; beside a bundle folder for a bundle).
        admin_token: the bearer token of /admin routes (default: the
            MOVIEREC_ADMIN_TOKEN variable); None or empty disables admin.
        watch_interval: seconds between looks at the registry's pointer (0: never look).
        cache_size: GET /recommend answers cached per loaded model version (0: none).
        max_body_bytes: larger request bodies are refused with 413.
        compute_threads: BLAS (and torch) threads per worker process while serving;
            one request is one small product, and several threads per request fight
            over the cores (tens of times slower under load). None leaves them as they are.

    Raises:
        RegistryError, BundleError: when there is no model to serve (the message says why).
    """
    server = ModelServer(registry, model, cache_size=cache_size)
    if admin_token is _ENV:
        admin_token = os.environ.get("MOVIEREC_ADMIN_TOKEN")
    token = admin_token.encode("utf-8") if admin_token else None
    if feedback_db is None:
        src = Path(registry)
        feedback_db = (src if server.registry is not None else src.parent) / "feedback.sqlite3"
    store = FeedbackStore(feedback_db)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        server.limit_threads(compute_threads)
        server.start_watching(watch_interval)
        try:
            yield
        finally:
            server.stop_watching()
            store.close()

    app = FastAPI(title="movierec", version=_version(), lifespan=lifespan,
                  description="Movie recommendations from a trained movierec model: for known users, new people "
                              "(cold start), similar movies, title search, taste groups and stored ratings.")
    app.state.server = server
    app.state.store = store

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(MovierecError)
    async def _movierec_error(_: Request, exc: MovierecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:  # a bug: logged, answered in JSON
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"Unexpected {type(exc).__name__} in movierec; this is a bug."}, status_code=500)

    def current() -> ServedModel:
        return server.current

    # -- status ---------------------------------------------------------------------------
    @app.get("/health", response_model=s.Health, tags=["status"])
    async def health() -> dict:
        """Liveness, the model served and its size."""
        m = current()
        return {"status": "ok", "model": m.ref, "n_users": len(m.model.users_), "n_movies": len(m.model.items_),
                "capabilities": m.capabilities}

    @app.get("/ready", response_model=s.Ready, tags=["status"])
    async def ready() -> dict:
        """Ready once a model is loaded."""
        return {"ready": True, "model": current().ref}

    # -- recommendations ------------------------------------------------------------------
    @app.get("/recommend", response_model=s.Recommendation, responses=ERRORS_404, tags=["recommend"])
    async def recommend(user_id: Annotated[int, Query(ge=-(2**63), le=2**63 - 1, description="Raw user ID.")],
                        k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10, exclude_seen: bool = True) -> Response:
        """Top-k movies for a known user, with a reason per movie."""
        return Response(current().recommend_json(user_id, k, exclude_seen), media_type="application/json")

    @app.post("/recommend/batch", response_model=s.BatchRecommendation, responses=ERRORS_404, tags=["recommend"])
    def recommend_batch(req: s.BatchRequest) -> dict:
        """Top-k movies for up to 1000 known users."""
        m = current()
        lists = m.recommend(req.user_ids, req.k, req.exclude_seen)
        return {"model": m.ref, "results": [{"user_id": u, "items": items} for u, items in zip(req.user_ids, lists)]}

    @app.get("/recommend_cold", response_model=s.ColdRecommendation, responses=ERRORS_404, tags=["recommend"])
    async def recommend_cold_get(liked: Annotated[str, Query(max_length=5000, pattern=r"^[0-9, -]*$",
                                                             description="Movie IDs the person likes, comma-separated.")
                                               ] = "",
                                 k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10) -> dict:
        """A new person's list from movies they like (no retraining)."""
        return current().recommend_new([], _parse_ids(liked, "liked movies"), k)

    @app.post("/recommend_cold", response_model=s.ColdRecommendation, responses=ERRORS_404, tags=["recommend"])
    async def recommend_cold_post(req: s.ColdRequest) -> dict:
        """A new person's list from their stars and/or liked movies (no retraining)."""
        return current().recommend_new([(r.movie_id, r.rating) for r in req.ratings], req.liked, req.k)

    @app.get("/similar/{movie_id}", response_model=s.SimilarMovies, responses=ERRORS_404, tags=["movies"])
    async def similar(movie_id: Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1)],
                      k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10) -> Response:
        """Movies similar to one movie."""
        return Response(current().similar_json(movie_id, k), media_type="application/json")

    # -- movies ---------------------------------------------------------------------------
    @app.get("/movies", response_model=s.MovieList, responses=ERRORS_404, tags=["movies"])
    def movies(q: Annotated[str, Query(max_length=200, description="Words of a title.")] = "",
               limit: Annotated[int, Query(ge=1, le=s.MAX_K)] = 20) -> dict:
        """Title search (case, accents and a missing leading "The" forgiven); the most-rated
        movies for an empty query."""
        m = current()
        return {"model": m.ref, "items": m.search(q, limit)}

    @app.get("/movies/{movie_id}", response_model=s.MovieDetail, responses=ERRORS_404, tags=["movies"])
    async def movie(movie_id: Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1)]) -> dict:
        """One movie with its rating count."""
        m = current()
        return {**m.movie_info(int(m.item_index([movie_id])[0])), "model": m.ref}

    # -- onboarding -----------------------------------------------------------------------
    def _groups_out(m: ServedModel, n: int) -> list[dict]:
        return [{"group_id": g.group_id, "label": g.label, "genres": g.genres,
                 "movies": [m.movies[i] for i in g.movie_idx.tolist()]} for g in m.groups(n)]

    @app.get("/onboarding", response_model=s.Onboarding, responses=ERRORS_404, tags=["onboarding"])
    def onboarding(groups: Annotated[int, Query(ge=2, le=20)] = 8) -> dict:
        """Taste groups for a first visit (clusters of the model's movie vectors)."""
        m = current()
        return {"model": m.ref, "groups": _groups_out(m, groups)}

    @app.post("/onboarding", response_model=s.ColdRecommendation, responses=ERRORS_404, tags=["onboarding"])
    def onboarding_pick(req: s.OnboardingRequest) -> dict:
        """First recommendations from the taste groups a person picked."""
        m = current()
        found = m.groups(req.groups)
        unknown = sorted({g for g in req.group_ids if g >= len(found)})
        if unknown:
            raise ApiError(422, f"There is no taste group {unknown[0]}; the groups are 0 to {len(found) - 1}.")
        liked = [m.movies[i]["movie_id"] for g in dict.fromkeys(req.group_ids) for i in found[g].movie_idx.tolist()]
        return m.recommend_new([], liked, req.k, picked="groups")

    # -- ratings --------------------------------------------------------------------------
    @app.post("/ratings", response_model=s.RatingsStored, responses=ERRORS_404, tags=["ratings"])
    def post_ratings(req: s.RatingsRequest) -> dict:
        """Store a person's stars (durably, before answering); a new rating of the same
        movie replaces the old one. Movies the model does not know are not stored."""
        m = current()
        ids = [r.movie_id for r in req.ratings]
        idx = m.item_index(ids, missing="mask")
        keep = [(r.movie_id, r.rating) for r, i in zip(req.ratings, idx.tolist()) if i >= 0]
        ignored = list(dict.fromkeys(r.movie_id for r, i in zip(req.ratings, idx.tolist()) if i < 0))
        stored = store.add(req.profile, keep) if keep else 0
        return {"model": m.ref, "profile": req.profile, "stored": stored, "ignored": ignored}

    @app.get("/ratings", response_model=s.ProfileRatings, responses=ERRORS_404, tags=["ratings"])
    def get_ratings(profile: ProfileQuery) -> dict:
        """A profile's stored ratings, oldest first."""
        rows = store.ratings(profile)
        return {"model": current().ref, "profile": profile,
                "ratings": [{"movie_id": r.movie_id, "rating": r.rating, "timestamp": r.timestamp} for r in rows]}

    @app.get("/profile/recommend", response_model=s.ColdRecommendation, responses=ERRORS_404, tags=["ratings"])
    def profile_recommend(profile: ProfileQuery, k: Annotated[int, Query(ge=1, le=s.MAX_K)] = 10) -> dict:
        """Recommendations from a profile's stored ratings (a fallback list before any rating)."""
        rows = store.ratings(profile)
        return current().recommend_new([(r.movie_id, r.rating) for r in rows], [], k)

    # -- admin ----------------------------------------------------------------------------
    def authorize(request: Request) -> None:
        if token is None:
            raise ApiError(404, "Admin is disabled; set MOVIEREC_ADMIN_TOKEN to enable it.")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "Admin needs an Authorization: Bearer token.", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode("utf-8"), token):
            raise ApiError(403, "The admin token is wrong.")

    admin_route: dict[str, Any] = {"responses": ERRORS_ADMIN, "tags": ["admin"], "dependencies": [Depends(authorize)]}

    def change(previous: ServedModel, new: ServedModel) -> dict:
        return {"model": new.ref, "previous": previous.ref}

    @app.get("/admin/status", response_model=s.AdminStatus, **admin_route)
    def admin_status() -> dict:
        """What is served, from where, the registry's versions and the last load error."""
        m = current()
        versions, pointer = [], None
        if server.registry is not None:
            pointer = server.pointer()["version"]
            versions = [{"version": v.version, "current": v.current, "created": v.created, "model_name": v.model_name}
                        for v in server.registry.versions(server.name)]
        return {"model": m.ref, "source": str(server.source), "registry": server.registry is not None,
                "pointer_version": pointer, "versions": versions, "loaded_at": m.loaded_at,
                "watch_interval": float(watch_interval), "last_error": server.last_error, "worker_pid": os.getpid()}

    @app.post("/admin/reload", response_model=s.AdminChange, **admin_route)
    def admin_reload() -> dict:
        """Load the registry's current version again and swap it in."""
        return change(*server.reload())

    @app.post("/admin/promote", response_model=s.AdminChange, **admin_route)
    def admin_promote(req: Annotated[s.PromoteRequest, Body()]) -> dict:
        """Make a version current (in the registry too) and serve it."""
        if server.registry is not None and req.version not in {v.version for v in server.registry.versions(server.name)}:
            listed = ", ".join(v.version for v in server.registry.versions(server.name))
            raise ApiError(404, f"Model {server.name!r} has no version {req.version[:40]!r}; it has: {listed}.")
        return change(*server.promote(req.version))

    @app.post("/admin/rollback", response_model=s.AdminChange, **admin_route)
    def admin_rollback() -> dict:
        """Serve the previously current version again (in the registry too)."""
        return change(*server.rollback())

    # -- the page -------------------------------------------------------------------------
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        index = WEB_DIR / "index.html"
        if index.is_file():
            return FileResponse(index, media_type="text/html")
        return HTMLResponse("<!doctype html><title>movierec</title><p>The web page is not installed; "
                            "the API is documented at <a href='/docs'>/docs</a>.</p>")

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(RecommendFastPath, server=server)
    return app


def _version() -> str:
    from movierec import __version__

    return __version__


def app_from_env() -> FastAPI:
    """An app configured by environment variables (uvicorn's factory for several workers):
    MOVIEREC_SERVE_REGISTRY, MOVIEREC_SERVE_MODEL, MOVIEREC_SERVE_FEEDBACK_DB,
    MOVIEREC_SERVE_WATCH_INTERVAL, and MOVIEREC_ADMIN_TOKEN."""
    registry = os.environ.get("MOVIEREC_SERVE_REGISTRY")
    if not registry:
        raise RegistryError("Set MOVIEREC_SERVE_REGISTRY to the registry folder to serve.")
    return create_app(registry, os.environ.get("MOVIEREC_SERVE_MODEL") or None,
                      feedback_db=os.environ.get("MOVIEREC_SERVE_FEEDBACK_DB") or None,
                      watch_interval=float(os.environ.get("MOVIEREC_SERVE_WATCH_INTERVAL", "0.5")))


__all__ = ["create_app", "app_from_env", "MAX_BODY_BYTES"]
