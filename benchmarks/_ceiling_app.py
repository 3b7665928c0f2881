"""The framework's ceiling for `serve_load.py`: FastAPI endpoints that do no work.

`GET /ceiling` answers a constant list (ten small integers): what FastAPI and uvicorn cost
per request on this machine, with nothing else. `GET /ceiling/payload` answers a constant
answer of the same shape and size as a `/recommend` answer (ten scored movies with titles,
genres and reasons) through a pydantic response model, as the service does: the framework
plus serialising a real-sized answer, still without any model work.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

CONSTANT = list(range(1, 11))


class _Ref(BaseModel):
    name: str
    version: str | None


class _Scored(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    score: float
    reason: str | None


class _Answer(BaseModel):
    model: _Ref
    user_id: int
    items: list[_Scored]


PAYLOAD = _Answer(
    model=_Ref(name="ceiling", version="1"),
    user_id=42,
    items=[_Scored(movie_id=100 + i, title=f"A Movie Title Of Ordinary Length, Part {i} (1996)", year=1996,
                   genres=["Comedy", "Drama", "Romance"], score=0.5 - i / 100,
                   reason="Because you rated Some Other Movie (1995) 5 stars") for i in range(10)],
)


def create_ceiling_app() -> FastAPI:
    """A FastAPI app with `/health`, `/ceiling` (constant list) and `/ceiling/payload`."""
    app = FastAPI(title="ceiling", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ceiling")
    async def ceiling() -> list[int]:
        return CONSTANT

    @app.get("/ceiling/payload", response_model=_Answer)
    async def ceiling_payload() -> _Answer:
        return PAYLOAD

    return app
