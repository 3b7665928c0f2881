"""The web page: GET / (index.html) and its files under /static (`serving/web/`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

#: the page's files: index.html, app.js, style.css
WEB_DIR = Path(__file__).resolve().parents[1] / "web"

router = APIRouter()


def mount_static(app: FastAPI) -> None:
    """Serve WEB_DIR's files under /static (an APIRouter cannot carry a mount)."""
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")


@router.get("/", include_in_schema=False)
async def page() -> Response:
    index = WEB_DIR / "index.html"
    if index.is_file():
        return FileResponse(index, media_type="text/html")
    return HTMLResponse("<!doctype html><title>movierec</title><p>The web page is not installed; "
                        "the API is documented at <a href='/docs'>/docs</a>.</p>")
