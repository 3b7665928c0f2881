"""The one shape of every error answer, and the error answers the routes document in the
OpenAPI schema.

Every 4xx (and the 500 of a bug) is `ErrorBody`: `detail`, one sentence a person can act
on, and for bad parameters or a bad body `errors`, each problem found (where, what, which
kind), never the input itself echoed back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorItem(BaseModel):
    """One problem with a request's parameters or body."""

    loc: list[str | int] = Field(description='Where: "body", "query", "path" or "header", then the field names '
                                             'and list positions down to the value, e.g. ["body", "ratings", 0, '
                                             '"rating"].')
    msg: str = Field(description="What is wrong with the value there.")
    type: str = Field(description='The kind of problem (pydantic\'s error type, e.g. "finite_number", "missing").')


class ErrorBody(BaseModel):
    """An error: one sentence in `detail`; for bad parameters or a bad body also `errors`."""

    detail: str = Field(description="One sentence saying what is wrong and what to do about it (for bad "
                                    "parameters or a bad body: where the first problem is, and what it is).")
    errors: list[ErrorItem] | None = Field(None, description="Each problem with the parameters or body (at most "
                                                             "20); absent for other errors.")


_ERR: dict[str, Any] = {"model": ErrorBody, "description": "An error (`detail`: one sentence)."}
#: the public routes: an unreadable body (400), an unknown user or movie (404), a body over
#: the limit (413), bad parameters or body (422)
ERRORS_404: dict[int | str, dict[str, Any]] = {400: _ERR, 404: _ERR, 413: _ERR, 422: _ERR}
#: the /admin routes: no or a wrong token (401/403), admin disabled or no such version (404),
#: a refused move (409)
ERRORS_ADMIN: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 413: _ERR,
                                                  422: _ERR}

__all__ = ["ErrorBody", "ErrorItem", "ERRORS_404", "ERRORS_ADMIN"]
