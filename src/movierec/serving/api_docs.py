"""The API's interactive documentation at /docs, served without the internet.

Swagger UI's JavaScript and CSS come from the `swagger-ui-bundle-v2` package (imported as
`swagger_ui_bundle`; Swagger UI 5, which reads FastAPI's OpenAPI 3.1 schema) and are
served by the app under /docs/assets, so /docs works on a machine with no way out and its
browser never asks a CDN for anything. Swagger UI's online validator is switched off for
the same reason (it would send the schema's address to validator.swagger.io). ReDoc is not
offered: its script is not shipped by any package the service depends on.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: where the app serves Swagger UI's files
ASSETS = "/docs/assets"


def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's files shipped by `swagger-ui-bundle-v2`, or None when the
    package is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at /docs over `app.openapi_url`, its files under `ASSETS`.

    Create `app` with `docs_url=None, redoc_url=None` (FastAPI's own /docs loads Swagger UI
    from a CDN)."""
    folder = swagger_ui_dir()
    if folder is not None:
        app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        schema = f"{root}{app.openapi_url}"
        if folder is None:
            return HTMLResponse(f"<!doctype html><title>{title}</title><p>The interactive API docs need the "
                                f"swagger-ui-bundle-v2 package; the API's schema is at <a href='{schema}'>"
                                f"{schema}</a>.</p>")
        return get_swagger_ui_html(openapi_url=schema, title=f"{title} - API docs",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})


__all__ = ["add_docs", "swagger_ui_dir", "ASSETS"]
