"""The service's ASGI middlewares: `BodyLimit` (413 for a body over the limit) and
`RecommendFastPath` (a plain GET /recommend answered from the served model's answer cache)."""

from __future__ import annotations

import re
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


def recommend_query(query: bytes) -> tuple[int, int, bool] | None:
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
            parsed = recommend_query(scope.get("query_string", b""))
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


__all__ = ["BodyLimit", "RecommendFastPath", "recommend_query"]
