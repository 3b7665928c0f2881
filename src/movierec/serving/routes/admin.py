"""Admin, behind the bearer token (`require_admin`): GET /admin/status and
POST /admin/reload, /admin/promote, /admin/rollback.

A move the registry or the model refuses answers 409 and changes nothing: the old
version keeps serving and the registry's pointer stays where it was. Without an admin
token the routes answer 404 ("Admin is disabled") and `create_app` leaves them out of the
OpenAPI schema and /docs.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from movierec.errors import RegistryError
from movierec.serving import schemas as s
from movierec.serving.deps import ApiError, Served, Server, Settings, require_admin
from movierec.serving.routes.responses import ERRORS_ADMIN
from movierec.serving.state import ServedModel

router = APIRouter(prefix="/admin", tags=["admin"], responses=ERRORS_ADMIN, dependencies=[Depends(require_admin)])


def _change(previous: ServedModel, new: ServedModel) -> dict:
    return {"model": new.ref, "previous": previous.ref}


@router.get("/status", response_model=s.AdminStatus)
def admin_status(m: Served, server: Server, settings: Settings) -> dict:
    """What is served, from where, the registry's versions, the last load error, and the
    worker's answer-cache size and compute threads."""
    versions, pointer, last_error = [], None, server.last_error
    if server.registry is not None:
        try:
            pointer = server.read_pointer().version
            versions = [{"version": v.version, "current": v.current, "created": v.created, "model_name": v.model_name}
                        for v in server.registry.versions(server.name)]
        except RegistryError as exc:  # a corrupt pointer: still answer, and say why
            last_error = str(exc)
    return {"model": m.ref, "source": str(server.source), "registry": server.registry is not None,
            "pointer_version": pointer, "versions": versions, "loaded_at": m.loaded_at,
            "watch_interval": settings.watch_interval, "last_error": last_error, "worker_pid": os.getpid(),
            "cache_size": server.cache_size, "threads": server.threads, "cache": m.memo.status()}


@router.post("/reload", response_model=s.AdminChange)
def admin_reload(server: Server) -> dict:
    """Load the registry's current version again and swap it in."""
    return _change(*server.reload())


@router.post("/promote", response_model=s.AdminChange)
def admin_promote(req: Annotated[s.PromoteRequest, Body()], server: Server) -> dict:
    """Make a version current (in the registry too) and serve it."""
    if server.registry is not None and req.version not in {v.version for v in server.registry.versions(server.name)}:
        listed = ", ".join(v.version for v in server.registry.versions(server.name))
        raise ApiError(404, f"Model {server.name!r} has no version {req.version[:40]!r}; it has: {listed}.")
    return _change(*server.promote(req.version))


@router.post("/rollback", response_model=s.AdminChange)
def admin_rollback(server: Server) -> dict:
    """Serve the previously current version again (in the registry too)."""
    return _change(*server.rollback())
