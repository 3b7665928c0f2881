"""Every error the service answers, in one shape: `{"detail": "<one sentence>", "errors": [...]}`.

`add_error_handlers(app)` installs the handlers `create_app` uses:

- `ApiError` (a route's or dependency's refusal) and `MovierecError` (the library's typed
  errors: 404 for an unknown ID, 409 for a bundle or registry move refused, 422 otherwise)
  answer their own sentence;
- `RequestValidationError` (FastAPI's and pydantic's checks of parameters and bodies, a
  body that is not JSON included) answers 422 with the first problem as the sentence
  ("body.ratings.0.rating: Input should be a finite number") and every problem in
  `errors` as {loc, msg, type}. The offending input is never echoed back: FastAPI's own
  handler echoes it, which costs bandwidth for a large body and fails outright (a 500)
  when the input is a NaN or an infinity, which JSON cannot carry;
- Starlette's `HTTPException` (an unknown path: 404, a method the path does not take: 405,
  a body that cannot be read: 400) answers a sentence naming the path and what to do;
- anything else is a bug: logged, and answered 500 in the same shape.

The body-size limit's 413 comes from `movierec.serving.middleware.BodyLimit`, in the same shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from movierec.errors import BundleError, MovierecError, UnknownIdError
from movierec.serving.deps import ApiError

log = logging.getLogger("movierec.serving")

#: problems listed in `errors` at most (a body with a thousand bad rows gets the first 20)
MAX_ERRORS = 20
#: characters of any text taken from the request (a field name, a path) quoted back at most
MAX_QUOTED = 60
#: characters of one problem's message at most
MAX_MESSAGE = 200


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_body(detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON of an error answer: {"detail": sentence} and, when given, {"errors": [...]}."""
    return {"detail": detail} if errors is None else {"detail": detail, "errors": errors}


def error_response(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error answer with HTTP `status` (see `error_body`)."""
    return JSONResponse(error_body(detail, errors), status_code=status, headers=dict(headers or {}) or None)


def status_of(exc: MovierecError) -> int:
    """The HTTP status of a library error: 404 unknown ID, 409 bundle/registry, else 422."""
    if isinstance(exc, UnknownIdError):
        return 404
    if isinstance(exc, BundleError):  # RegistryError included: a move the registry refuses
        return 409
    return 422


def problems(raw: Iterable[Any], limit: int | None = MAX_ERRORS) -> list[dict[str, Any]]:
    """Pydantic/FastAPI validation errors as {loc, msg, type}, without their `input` (or
    `ctx`, `url`): at most `limit`, texts from the request clipped to `MAX_QUOTED`."""
    out: list[dict[str, Any]] = []
    for error in raw:
        if limit is not None and len(out) == limit:
            break
        error = error if isinstance(error, Mapping) else {"msg": str(error)}
        loc = [part if isinstance(part, int) and not isinstance(part, bool) else _clip(str(part), MAX_QUOTED)
               for part in error.get("loc", ())]
        out.append({"loc": loc, "msg": _clip(str(error.get("msg", "Invalid value")), MAX_MESSAGE),
                    "type": _clip(str(error.get("type", "value_error")), MAX_QUOTED)})
    return out


#: the types of a whole body that is missing or not a JSON object
_NOT_AN_OBJECT = ("model_attributes_type", "model_type", "dict_type", "missing")


def _where(loc: list[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "request"


#: the last `loc` part pydantic adds for one member of a union ("int", "constrained-str", ...)
_UNION_MEMBER = re.compile(r"^(constrained-)?(int|str|float|bool|bytes|decimal|none|list\[.*\]|dict\[.*\]"
                           r"|function-[a-z]+\[.*\])$")


def _by_value(listed: list[dict[str, Any]]) -> list[tuple[list[str | int], list[str]]]:
    """(where, messages) per value: the problems with each member of a union (an ID that may
    be a number or a text, say) are one value's problems, not several."""
    groups: list[tuple[list[str | int], list[str]]] = []
    for item in listed:
        loc = item["loc"]
        member = bool(loc) and isinstance(loc[-1], str) and bool(_UNION_MEMBER.match(loc[-1]))
        where = loc[:-1] if member else loc
        if member and groups and groups[-1][0] == where:
            groups[-1][1].append(item["msg"])
        else:
            groups.append((where, [item["msg"]]))
    return groups


def validation_detail(raw: list[Any]) -> str:
    """One sentence for a failed validation (`raw`: FastAPI's errors): the first problem,
    where and what, and how many more there are."""
    groups = _by_value(problems(raw, limit=None))
    if not groups:
        return "The request's parameters or body are not valid."
    first = raw[0] if isinstance(raw[0], Mapping) else {}
    (loc, messages), others = groups[0], len(groups) - 1
    more = f" (and {others} more problem{'s' if others > 1 else ''}; see errors)" if others else ""
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        at = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return f"The request body is not valid JSON: {_clip(str(reason), MAX_MESSAGE)}{at}."
    if loc == ["body"] and first.get("type") in _NOT_AN_OBJECT:
        return (f"body: {messages[0]}; send a JSON object with Content-Type: application/json "
                "(see /docs for its fields)" + more)
    return f"{_where(loc)}: {'; or '.join(dict.fromkeys(messages))}{more}"


def _http_detail(request: Request, exc: HTTPException) -> str:
    """A sentence for Starlette's own HTTP errors (or an HTTPException's own text)."""
    path = _clip(request.url.path, MAX_QUOTED)
    method = _clip(request.method, 10)
    if exc.status_code == 404 and exc.detail in (None, "", "Not Found"):
        return f"Nothing at {method} {path}; the API's routes are listed at /docs."
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow") or ""
        use = f"; use {allowed}" if allowed else ""
        return f"{path} does not take {method}{use} (see /docs)."
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return "The request body could not be read; send UTF-8 JSON with Content-Type: application/json."
    if isinstance(exc.detail, str) and exc.detail:
        return _clip(exc.detail, MAX_MESSAGE)
    return f"The request was refused (HTTP {exc.status_code})."


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of `app` in the one shape (see the module's docstring)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(MovierecError)
    async def _movierec_error(_: Request, exc: MovierecError) -> JSONResponse:
        return error_response(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        return error_response(422, validation_detail(raw), problems(raw))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, _http_detail(request, exc), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:  # a bug: logged, answered in JSON
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"Unexpected {type(exc).__name__} in movierec; this is a bug.")


__all__ = ["add_error_handlers", "error_body", "error_response", "problems", "validation_detail", "status_of",
           "MAX_ERRORS"]
