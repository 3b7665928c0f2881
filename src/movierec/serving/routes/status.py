"""GET /health (liveness, the model served, its size and rating scale) and GET /ready (readiness)."""

from __future__ import annotations

from fastapi import APIRouter

from movierec.serving import schemas as s
from movierec.serving.deps import Served

router = APIRouter(tags=["status"])


@router.get("/health", response_model=s.Health)
def health(m: Served) -> dict:  # a thread, not the event loop: it may ask Redis
    """Liveness, the model served and its size, the stars it takes (with the liked threshold),
    the kind of its IDs (whole numbers or text) and the answer cache (which one, whether it
    is reachable, this worker's hits and misses)."""
    scale = m.answers.rating_scale
    return {"status": "ok", "model": m.ref, "n_users": len(m.model.users_), "n_movies": len(m.model.items_),
            "capabilities": m.capabilities, "rating_scale": list(scale) if scale else None,
            "liked_threshold": m.answers.threshold, "user_id_kind": m.user_id_kind, "movie_id_kind": m.movie_id_kind,
            "cache": m.memo.status()}


@router.get("/ready", response_model=s.Ready)
async def ready(m: Served) -> dict:
    """Ready once a model is loaded."""
    return {"ready": True, "model": m.ref}
