"""The error answers the routes document in the OpenAPI schema (one sentence in `detail`)."""

from __future__ import annotations

from typing import Any

from movierec.serving import schemas as s

_ERR: dict[str, Any] = {"model": s.ErrorBody}
#: the public routes: bad input (4xx), an unknown user or movie (404), a body over the limit (413)
ERRORS_404: dict[int | str, dict[str, Any]] = {400: _ERR, 404: _ERR, 413: _ERR, 422: _ERR}
#: the /admin routes: no or a wrong token (401/403), admin disabled (404), a refused move (409)
ERRORS_ADMIN: dict[int | str, dict[str, Any]] = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 413: _ERR,
                                                  422: _ERR}

__all__ = ["ERRORS_404", "ERRORS_ADMIN"]
