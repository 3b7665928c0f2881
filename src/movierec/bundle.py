"""Self-contained model folders: everything needed to answer queries, nothing pickled.

Layout of a folder::

    manifest.json     format version, movierec version, model class and params,
                      data fingerprint, metrics, created time, sha256 of every file
    state.safetensors learned arrays
    users.npy         raw user IDs in index order
    items.npy         raw movie IDs in index order
    seen.npz          users x items training interactions (for exclude_seen)
    catalog.parquet   movie titles, years, genres

A folder is written into a temporary sibling and renamed into place, so a crash never
leaves half a model where a good one was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from movierec import __version__
from movierec.data.dataset import Catalog
from movierec.data.idmap import IdMap
from movierec.errors import BundleError, UnknownItemError, UnknownUserError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _save_ids(path: Path, idmap: IdMap) -> None:
    raw = idmap.raw_ids
    if raw.dtype == object:
        raw = raw.astype(str)
    np.save(path, raw, allow_pickle=False)


def save_model(model, path: Path, metrics: dict | None = None) -> Path:
    """Write `model` (fitted) to folder `path`, replacing any folder there atomically."""
    from movierec.models.registry import class_path

    model._check_fitted()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: np.ascontiguousarray(v) for k, v in model._state().items()}
        save_file(state, str(tmp / "state.safetensors"))
        _save_ids(tmp / "users.npy", model.users_)
        _save_ids(tmp / "items.npy", model.items_)
        sp.save_npz(tmp / "seen.npz", model.seen_.tocsr(), compressed=True)
        model.catalog_.to_frame(model.items_).assign(
            item_id=lambda f: f["item_id"].astype(str)
        ).to_parquet(tmp / "catalog.parquet", index=False)
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        manifest = {
            "format_version": FORMAT_VERSION,
            "movierec_version": __version__,
            "model_name": model.name,
            "model_class": class_path(model),
            "params": model.get_params(),
            "extra": getattr(model, "_manifest_extra", lambda: {})(),
            "rating_scale": list(model.rating_scale_) if model.rating_scale_ else None,
            "data_fingerprint": getattr(model, "data_fingerprint_", None),
            "metrics": metrics or {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
        if path.exists():
            backup = path.with_name(f".{path.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            path.rename(backup)
            tmp.rename(path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_manifest(path: Path) -> dict:
    """The manifest of a model folder, with clear errors when it is missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"No model folder at {path}.")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a movierec model folder (no {MANIFEST}).")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{mpath} is corrupt (not valid JSON).") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path} has model format {manifest.get('format_version')!r}; this movierec reads {FORMAT_VERSION}."
        )
    return manifest


def load_model(path: Path):
    """Load and verify a model folder written by `save_model`."""
    from movierec.models.registry import class_from_path

    path = Path(path)
    manifest = read_manifest(path)
    for name, digest in manifest.get("files", {}).items():
        fpath = path / name
        if not fpath.is_file():
            raise BundleError(f"Model folder {path} is incomplete: {name} is missing.")
        if _sha256(fpath) != digest:
            raise BundleError(f"Model folder {path} is corrupt: {name} does not match its checksum.")
    cls = class_from_path(manifest["model_class"])
    model = cls(**manifest["params"])
    users = np.load(path / "users.npy", allow_pickle=False)
    items = np.load(path / "items.npy", allow_pickle=False)
    model.users_ = IdMap(users, kind="user", error=UnknownUserError)
    model.items_ = IdMap(items, kind="movie", error=UnknownItemError)
    model.seen_ = sp.load_npz(path / "seen.npz").tocsr()
    cat = pd.read_parquet(path / "catalog.parquet")
    cat["item_id"] = items
    cat["genres"] = [g.split("|") if g else [] for g in cat["genres"]]
    model.catalog_ = Catalog.from_frame(model.items_, cat)
    scale = manifest.get("rating_scale")
    model.rating_scale_ = tuple(scale) if scale else None
    model.data_fingerprint_ = manifest.get("data_fingerprint")
    if hasattr(model, "_load_extra"):
        model._load_extra(manifest.get("extra", {}))
    model._set_state(load_file(str(path / "state.safetensors")))
    return model
