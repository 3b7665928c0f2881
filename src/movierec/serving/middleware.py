"""The service's ASGI middlewares: `BodyLimit` (413 for a body over the limit) and
`AnswerFastPath` (a plain GET /recommend, /recommend_cold or /similar/{id} answered
without FastAPI's parameter machinery)."""

from __future__ import annotations

from typing import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse

from movierec.errors import MovierecError
from movierec.serving import schemas as s
from movierec.serving.server import ModelServer
from movierec.serving.settings import MAX_BODY_BYTES


class BodyLimit:
    """ASGI middleware refusing request bodies over `limit` bytes with 413 (declared or streamed)."""

    def __init__(self, app: Callable, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (f"The request body is larger than {self.limit} bytes, the service's limit; "
                   f"send fewer ratings or users per request.")
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


def _params(query: bytes, allowed: set[str]) -> dict[str, str] | None:
    """The query's parameters when each is one of `allowed` and given once, else None."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not set(params) <= allowed:
        return None
    return params


def _k(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 4 and 1 <= int(text) <= s.MAX_K else None


def _id(text: str) -> bool:
    """Whether `text` can be a raw ID as given in a URL: 1 to MAX_ID_CHARS characters, no
    blanks around it (the served model then reads it as its kind, whole number or text)."""
    return 0 < len(text) <= s.MAX_ID_CHARS and text == text.strip()


def recommend_query(query: bytes) -> tuple[str, int, bool] | None:
    """(user ID as given, k, exclude_seen) of a plain GET /recommend query, else None (the
    route then parses it and answers any error)."""
    params = _params(query, {"user_id", "k", "exclude_seen"})
    if params is None:
        return None
    user, k, exclude = params.get("user_id", ""), _k(params.get("k", "10")), params.get("exclude_seen", "true")
    if not _id(user) or k is None or exclude not in ("true", "false"):
        return None
    return user, k, exclude == "true"


def cold_query(query: bytes) -> tuple[tuple[str, ...], int] | None:
    """(liked movie IDs as given, k) of a plain GET /recommend_cold query with at least one
    and at most 500 movies in printable ASCII (as the route reads them), else None."""
    params = _params(query, {"liked", "k"})
    if params is None:
        return None
    liked, k = params.get("liked", ""), _k(params.get("k", "10"))
    if k is None or len(liked) > s.MAX_IDS_CHARS or not (liked.isascii() and liked.isprintable()):
        return None
    ids = tuple(liked.split(","))
    if len(ids) > s.MAX_INPUT_MOVIES or not all(_id(m) for m in ids):
        return None
    return ids, k


def similar_query(path: str, query: bytes) -> tuple[str, int] | None:
    """(movie ID as given, k) of a plain GET /similar/{movie_id}?k=.. , else None."""
    movie = path[len("/similar/"):]
    params = _params(query, {"k"})
    if params is None or not _id(movie) or "/" in movie:
        return None
    k = _k(params.get("k", "10"))
    return None if k is None else (movie, k)


#: path -> (the query's parser: arguments or None, the `ServedModel` method answering them)
_FAST: dict[str, tuple[Callable[[str, bytes], tuple | None], str]] = {
    "/recommend": (lambda path, query: recommend_query(query), "recommend_json"),
    "/recommend_cold": (lambda path, query: cold_query(query), "cold_json"),
    "/similar/": (similar_query, "similar_json"),
}


class AnswerFastPath:
    """ASGI middleware answering the hottest plain questions straight from the served
    model, without FastAPI's parameter machinery: `GET /recommend?user_id=..&k=..`,
    `GET /similar/{movie_id}?k=..` (both from the answer memo when it holds them) and
    `GET /recommend_cold?liked=..&k=..`. The bytes are those the routes answer (the same
    `ServedModel` calls, which read the IDs as the model's kind: whole numbers or text);
    anything else -- other parameters, filters, an unknown user, an ID that is not of the
    model's kind, anything to refuse -- goes on to the route, which validates it and
    answers errors as usual."""

    def __init__(self, app: Callable, server: ModelServer):
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._answer(scope["path"], scope.get("query_string", b""))
            if body is not None:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode("ascii"))]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, path: str, query: bytes) -> bytes | None:
        """The answer's bytes, or None: not a plain question (or one to refuse), for the route."""
        found = _FAST.get(path) or (_FAST["/similar/"] if path.startswith("/similar/") else None)
        if found is None:
            return None
        parse, method = found
        parsed = parse(path, query)
        if parsed is None:
            return None
        try:
            return getattr(self.server.current, method)(*parsed)
        except MovierecError:
            return None


__all__ = ["BodyLimit", "AnswerFastPath", "recommend_query", "cold_query", "similar_query"]
