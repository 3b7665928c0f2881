"""Bundles: a fitted model as a self-contained, verified folder; nothing pickled.

Layout of a bundle folder::

    manifest.json     format and movierec versions, model name, class and params,
                      capabilities, state meta, data fingerprint and source, metrics, info, created
                      time, and the size and sha256 of EVERY other file in the folder
    state.safetensors the model's learned arrays (`Recommender.state_dict().arrays`)
    users.npy         raw user IDs in index order (strings as unicode)
    items.npy         raw movie IDs in index order
    catalog.parquet   titles, years and genres, one row per movie in index order
    (extras)          optional further files named by `Bundle.extras` (e.g. a retrieval
                      index), listed and checked like every other file

A bundle is written into a temporary sibling folder and renamed into place, so a crash
never leaves half a model where a good one was. Loading refuses, in one sentence, any
folder whose manifest is missing or unreadable, of another format, written by an
incompatible movierec, without a complete file list, or whose files are missing,
unlisted, truncated or changed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from packaging.version import InvalidVersion, Version

from movierec import __version__
from movierec.data.dataset import Catalog, Dataset
from movierec.data.checksum import file_sha256
from movierec.data.idmap import IdMap
from movierec.errors import BundleError, ConfigError, UnknownItemError, UnknownUserError
from movierec.models.base import ModelState, Recommender
from movierec.training.options import without_runtime_params

#: the bundle layout this movierec writes and reads
FORMAT_VERSION = 2
#: the oldest movierec whose bundles this one reads (newer major.minor releases are refused too)
MIN_READ_VERSION = "0.1.0"

MANIFEST = "manifest.json"
STATE = "state.safetensors"
USERS = "users.npy"
ITEMS = "items.npy"
CATALOG = "catalog.parquet"
REQUIRED_FILES = (STATE, USERS, ITEMS, CATALOG)


@dataclass
class Bundle:
    """A fitted model with everything needed to serve it.

    Attributes:
        model: the fitted Recommender.
        catalog: titles/years/genres in `model.items_` index order (`Catalog.empty(n)`
            when unknown).
        manifest: everything written to manifest.json; `from_model` fills the parts it
            knows, `save_bundle`/`load_bundle` fill the rest.
        path: the folder the bundle was saved to or loaded from, if any.
        extras: further files of the bundle, file name -> bytes (e.g. a retrieval index
            written by `movierec.retrieval`); saved beside the required files, listed
            with their sha256 in the manifest and verified on load like them.
    """

    model: Recommender
    catalog: Catalog
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    extras: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_model(
        cls,
        model: Recommender,
        dataset: Dataset | None = None,
        *,
        catalog: Catalog | None = None,
        metrics: dict | None = None,
        info: dict | None = None,
    ) -> "Bundle":
        """Bundle a fitted model with the catalog and fingerprint of the data it learned from.

        Args:
            model: a fitted model.
            dataset: its training data (or any split of the same dataset): gives the
                catalog and the data fingerprint and, for a whole dataset read by name or
                from a file, its source (manifest "data", which `movierec retrain` reads
                again). Its movies must be the model's movies.
            catalog: the catalog, when no dataset is given (or to override its catalog).
            metrics: evaluation results to record (JSON values).
            info: anything else to record (JSON values), e.g. the split or the command.

        Raises:
            NotFittedError: when the model is not fitted.
            ConfigError: when the dataset or catalog does not describe the model's movies.
        """
        model.check_is_fitted()
        n_items = len(model.items_)
        if dataset is not None and dataset.items != model.items_:
            raise ConfigError("The dataset's movies are not the movies the model was fitted on.")
        if catalog is None:
            catalog = dataset.catalog if dataset is not None and dataset.catalog is not None else Catalog.empty(n_items)
        if len(catalog.titles) != n_items:
            raise ConfigError(f"The catalog describes {len(catalog.titles)} movies; the model knows {n_items}.")
        from movierec.models.registry import class_path

        fingerprint = dataset.fingerprint() if dataset is not None else None
        source = None
        if dataset is not None and dataset.source:
            # what `movierec retrain` reads again (see movierec.data.source)
            from movierec.data.source import with_checksums

            source = {**with_checksums(dataset.source), "fingerprint": fingerprint,
                      "rating_scale": list(dataset.rating_scale) if dataset.rating_scale else None}
        manifest = {
            "model_name": model.name,
            "model_class": class_path(model),
            "params": _jsonable(model.get_params()),
            "capabilities": model.capabilities.names(),
            "n_users": len(model.users_),
            "n_items": n_items,
            "data_fingerprint": fingerprint,
            "data": source,
            "metrics": _jsonable(dict(metrics or {})),
            "info": _jsonable(dict(info or {})),
        }
        return cls(model=model, catalog=catalog, manifest=manifest)

    @property
    def name(self) -> str:
        """The model's registered name (e.g. "ease")."""
        return self.manifest.get("model_name") or self.model.name

    @property
    def version(self) -> str | None:
        """The registry version, for bundles stored in a ModelRegistry."""
        return self.manifest.get("version")

    @property
    def metrics(self) -> dict:
        return dict(self.manifest.get("metrics") or {})

    @property
    def params(self) -> dict:
        return dict(self.manifest.get("params") or self.model.get_params())


# -- helpers ------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays, tuples and paths turned into JSON values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    """numpy values, paths and sets in a manifest as JSON (`movierec.jsonable.json_default`)."""
    from movierec.jsonable import json_default

    return json_default(value)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; nothing to sync there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def is_bundle_dir(path: str | Path) -> bool:
    """True for a folder holding a movierec manifest.json (valid or not)."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return False
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest and "model_class" in manifest


# -- writing ------------------------------------------------------------------------
def _write_state(state: ModelState, path: Path) -> None:
    from safetensors.numpy import save_file

    arrays = {}
    for key, arr in state.arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise BundleError(f"Cannot save the model: its state array {key!r} is not numeric ({arr.dtype}).")
        arrays[key] = np.ascontiguousarray(arr)
    try:
        save_file(arrays, str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(f"Cannot save the model's state: {exc}.") from exc


def _write_ids(idmap: IdMap, path: Path) -> None:
    raw = np.asarray(idmap.raw_ids)
    if raw.dtype.kind not in "iuU":
        raw = raw.astype(str)
    np.save(path, raw, allow_pickle=False)


def _write_catalog(catalog: Catalog, items: IdMap, path: Path) -> None:
    raw = np.asarray(items.raw_ids)
    frame = pd.DataFrame(
        {
            "item_id": raw if raw.dtype.kind in "iu" else raw.astype(str),
            "title": pd.Series([str(t) if t is not None else "" for t in catalog.titles], dtype=object),
            "year": np.asarray(catalog.years, dtype=np.int32),
            "genres": pd.Series([[str(g) for g in gl] for gl in catalog.genres], dtype=object),
        }
    )
    frame.to_parquet(path, index=False)


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse targets that must never be written or replaced."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise BundleError(f"Refusing to write a bundle over {path}: it is the working folder or one of its parents.")
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_dir():
        raise BundleError(f"Refusing to write a bundle over {path}: it is a file, not a bundle folder.")
    if not any(path.iterdir()):
        return  # an existing empty folder may be used
    if not overwrite:
        raise BundleError(f"A folder already exists at {path}; choose another path or allow overwriting.")
    if not is_bundle_dir(path):
        raise BundleError(f"Refusing to replace {path}: it holds files but is not a movierec bundle.")


def _check_extra_name(name: Any) -> None:
    """Refuse an extra file name that is not a plain new file name in the bundle folder."""
    if (not isinstance(name, str) or name in ("", ".", "..", MANIFEST, *REQUIRED_FILES) or Path(name).name != name
            or "\\" in name or name.startswith(".")):
        raise BundleError(f"Cannot save the bundle: {name!r} is not a valid name for an extra file.")


def _new_hidden_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder `parent/<prefix><random>` with the permissions of any new folder.

    `os.mkdir` applies the user's umask (0o777 & ~umask, e.g. drwxr-xr-x), where
    `tempfile.mkdtemp` would give drwx------; the folder becomes the bundle itself, so it
    must be readable by whoever may read its parent. Its mode also tells the files'
    mode (0o666 & ~umask) without calling `os.umask`, which would change the umask of
    every thread for a moment.
    """
    while True:
        folder = parent / f"{prefix}{uuid.uuid4().hex[:12]}"
        try:
            os.mkdir(folder)
        except FileExistsError:  # a name already taken: draw another
            continue
        return folder


def save_bundle(bundle: Bundle, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write `bundle` to folder `path`, atomically; returns the path.

    The files are written into a temporary sibling folder, synced, and renamed into
    place. With `overwrite`, an existing bundle folder is replaced only after the new
    one is complete. An empty folder may always be used. The folder and its files get
    the permissions of any new folder and file (0o777 and 0o666 less the user's umask).

    Raises:
        BundleError: for a target that exists (without `overwrite`), a file, a folder
            that is not a bundle, the working folder or a parent of it, or a state that
            cannot be written.
    """
    path = Path(path)
    _check_target(path, overwrite)
    model = bundle.model
    model.check_is_fitted()
    # checks the catalog against the model before anything is written
    known = Bundle.from_model(model, catalog=bundle.catalog).manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_hidden_folder(path.parent, f".{path.name}.tmp-")
    try:
        state = model.state_dict()
        _write_state(state, tmp / STATE)
        _write_ids(model.users_, tmp / USERS)
        _write_ids(model.items_, tmp / ITEMS)
        _write_catalog(bundle.catalog, model.items_, tmp / CATALOG)
        for extra_name, data in sorted(bundle.extras.items()):
            _check_extra_name(extra_name)
            (tmp / extra_name).write_bytes(bytes(data))
        files = {}
        file_mode = stat.S_IMODE(tmp.stat().st_mode) & 0o666  # 0o666 & ~umask, read without os.umask
        for fpath in sorted(tmp.iterdir()):
            if stat.S_IMODE(fpath.stat().st_mode) != file_mode:
                os.chmod(fpath, file_mode)  # safetensors writes its file 0o600
            _fsync_file(fpath)
            files[fpath.name] = {"sha256": file_sha256(fpath), "bytes": fpath.stat().st_size}
        manifest = {**known, **{k: v for k, v in bundle.manifest.items() if v is not None}}
        manifest.update(
            format_version=FORMAT_VERSION,
            movierec_version=__version__,
            model_name=known["model_name"],
            model_class=known["model_class"],
            params=known["params"],
            capabilities=known["capabilities"],
            n_users=known["n_users"],
            n_items=known["n_items"],
            state_meta=_jsonable(state.meta),
            catalog_genres=list(bundle.catalog.genre_names),
            data_fingerprint=bundle.manifest.get("data_fingerprint"),
            metrics=_jsonable(dict(bundle.manifest.get("metrics") or {})),
            info=_jsonable(dict(bundle.manifest.get("info") or {})),
            created=_now(),
            files=files,
        )
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, default=_json_default)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    bundle.manifest = manifest
    bundle.path = path
    return path


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename `tmp` to `path`; an existing bundle there is kept until the new one is in."""
    if not path.exists():
        os.rename(tmp, path)
        return
    if path.is_dir() and not any(path.iterdir()):
        # POSIX rename replaces an empty folder atomically (a registry's reserved version
        # folder never disappears, so no concurrent add can take its number)
        try:
            os.rename(tmp, path)
            return
        except OSError:
            os.rmdir(path)
            os.rename(tmp, path)
            return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- reading and verification ---------------------------------------------------------
def _major_minor(version: Version) -> tuple[int, int]:
    release = tuple(version.release) + (0, 0)
    return release[0], release[1]


def read_manifest(path: str | Path) -> dict:
    """The manifest of a bundle folder, checked for format and movierec version.

    Only the manifest is read; `verify_bundle` also checks every file.

    Raises:
        BundleError: no folder, no manifest, not a JSON object, an unknown format
            version, or a movierec version this release cannot read.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"No model bundle folder at {path}.")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a movierec model bundle: it has no {MANIFEST}.")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"The manifest of bundle {path} is corrupt (not valid JSON).") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"The manifest of bundle {path} is corrupt (not a JSON object).")
    fmt = manifest.get("format_version")
    if fmt is None:
        raise BundleError(f"The manifest of bundle {path} has no format_version.")
    if isinstance(fmt, bool) or fmt != FORMAT_VERSION:
        raise BundleError(f"Bundle {path} has format version {fmt!r}; this movierec reads format {FORMAT_VERSION}.")
    written = manifest.get("movierec_version")
    if not isinstance(written, str):
        raise BundleError(f"The manifest of bundle {path} does not say which movierec version wrote it.")
    try:
        wv = Version(written)
    except InvalidVersion:
        raise BundleError(f"Bundle {path} names an invalid movierec version {written!r}.") from None
    this = Version(__version__)
    if _major_minor(wv) > _major_minor(this):
        raise BundleError(f"Bundle {path} was written by movierec {written}, newer than this movierec {__version__}; "
                          "upgrade movierec to read it.")
    if wv < Version(MIN_READ_VERSION):
        raise BundleError(f"Bundle {path} was written by movierec {written}; this movierec reads bundles from "
                          f"{MIN_READ_VERSION} on.")
    return manifest


def _check_files(path: Path, manifest: dict) -> None:
    files = manifest.get("files")
    if files is None:
        raise BundleError(f"The manifest of bundle {path} has no file list, so its files cannot be verified.")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"The manifest of bundle {path} has an empty or malformed file list.")
    for name, entry in files.items():
        if (not isinstance(name, str) or name in ("", ".", "..", MANIFEST) or Path(name).name != name
                or "\\" in name):
            raise BundleError(f"The manifest of bundle {path} lists an invalid file name {name!r}.")
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("bytes"), int) or isinstance(entry.get("bytes"), bool)):
            raise BundleError(f"The manifest of bundle {path} has a malformed entry for {name}.")
    absent = [name for name in REQUIRED_FILES if name not in files]
    if absent:
        raise BundleError(f"The manifest of bundle {path} does not list {', '.join(absent)}.")
    present = {p.name for p in path.iterdir() if p.name != MANIFEST}
    unlisted = sorted(present - set(files))
    if unlisted:
        raise BundleError(f"Bundle {path} holds files its manifest does not list: {', '.join(unlisted)}.")
    missing = sorted(set(files) - present)
    if missing:
        raise BundleError(f"Bundle {path} is incomplete: {', '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} missing.")
    for name, entry in sorted(files.items()):
        fpath = path / name
        if fpath.is_symlink() or not fpath.is_file():
            raise BundleError(f"Bundle {path} is corrupt: {name} is not a regular file.")
        size = fpath.stat().st_size
        if size != entry["bytes"]:
            raise BundleError(f"Bundle {path} is corrupt: {name} has {size} bytes, its manifest says "
                              f"{entry['bytes']} (truncated or changed).")
        if file_sha256(fpath) != entry["sha256"]:
            raise BundleError(f"Bundle {path} is corrupt: {name} does not match its checksum.")


def _model_class(path: Path, manifest: dict) -> type[Recommender]:
    target = manifest.get("model_class")
    if not isinstance(target, str) or target.count(":") != 1:
        raise BundleError(f"The manifest of bundle {path} names no valid model class.")
    module, name = target.split(":")
    if not module.startswith("movierec."):
        raise BundleError(f"Bundle {path} names a model class outside movierec ({target}); refusing to load it.")
    from movierec.models.registry import class_from_path

    try:
        cls = class_from_path(target)
    except (ImportError, AttributeError, ValueError, ConfigError):
        raise BundleError(f"Bundle {path} names an unknown model class {target}.") from None
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise BundleError(f"Bundle {path} names {target}, which is not a movierec model class.")
    return cls


def verify_bundle(path: str | Path) -> dict:
    """Fully verify a bundle folder without loading the model; returns its manifest.

    Checks the manifest (see `read_manifest`), that it lists every file in the folder
    and every required file, that no listed file is missing, truncated or changed
    (size and sha256), and that its model class is a movierec model.
    `load_bundle` additionally checks that the files' contents fit together.

    Raises:
        BundleError: one sentence naming the folder and what is wrong.
    """
    path = Path(path)
    manifest = read_manifest(path)
    _check_files(path, manifest)
    _model_class(path, manifest)
    return manifest


def _read_ids(path: Path, name: str, kind: str, error) -> IdMap:
    try:
        raw = np.load(path / name, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"Bundle {path} is corrupt: {name} cannot be read ({exc}).") from None
    if raw.ndim != 1 or raw.dtype.kind not in "iuU":
        raise BundleError(f"Bundle {path} is corrupt: {name} does not hold a list of IDs.")
    idmap = IdMap(raw, kind=kind, error=error)
    if len(idmap) != len(raw) or not np.array_equal(idmap.raw_ids.astype(raw.dtype), raw):
        raise BundleError(f"Bundle {path} is corrupt: {name} holds repeated or unsorted IDs.")
    return idmap


def _read_catalog(path: Path, items: IdMap, genre_names: list | None) -> Catalog:
    try:
        frame = pd.read_parquet(path / CATALOG)
    except Exception as exc:  # pyarrow raises several error types
        raise BundleError(f"Bundle {path} is corrupt: {CATALOG} cannot be read ({exc}).") from None
    n = len(items)
    if not {"item_id", "title", "year", "genres"} <= set(frame.columns) or len(frame) != n:
        raise BundleError(f"Bundle {path} is corrupt: {CATALOG} does not describe its {n} movies.")
    if not np.array_equal(frame["item_id"].astype(str).to_numpy(), np.asarray(items.raw_ids).astype(str)):
        raise BundleError(f"Bundle {path} is corrupt: {CATALOG} is not in the order of {ITEMS}.")
    genres = [[str(g) for g in (gl if gl is not None else [])] for gl in frame["genres"]]
    names = list(genre_names) if genre_names is not None else sorted({g for gl in genres for g in gl})
    col = {g: j for j, g in enumerate(names)}
    matrix = np.zeros((n, len(names)), dtype=np.uint8)
    for i, gl in enumerate(genres):
        for g in gl:
            if g not in col:
                raise BundleError(f"Bundle {path} is corrupt: {CATALOG} names a genre {g!r} the manifest lacks.")
            matrix[i, col[g]] = 1
    return Catalog(
        titles=frame["title"].fillna("").to_numpy(dtype=object),
        years=frame["year"].to_numpy(dtype=np.int32),
        genres=genres,
        genre_names=names,
        genre_matrix=matrix,
    )


def load_bundle(path: str | Path) -> Bundle:
    """Verify (see `verify_bundle`) and load a bundle folder written by `save_bundle`.

    Raises:
        BundleError: one sentence naming the folder and what is wrong, including
            unreadable files and a state that does not match the ID maps.
    """
    from safetensors.numpy import load_file

    path = Path(path)
    manifest = verify_bundle(path)
    cls = _model_class(path, manifest)
    params = manifest.get("params") or {}
    if not isinstance(params, dict):
        raise BundleError(f"The manifest of bundle {path} has malformed model parameters.")
    # bundles of older versions list the torch models' runtime options (seed, device ...)
    # among their parameters; they are not hyperparameters any more
    params = without_runtime_params(params, cls.default_params() if hasattr(cls, "default_params") else params)
    try:
        model = cls(**params)
    except (TypeError, ValueError, ConfigError) as exc:
        raise BundleError(f"Bundle {path} has parameters {cls.__name__} does not accept ({exc}).") from None
    users = _read_ids(path, USERS, "user", UnknownUserError)
    items = _read_ids(path, ITEMS, "movie", UnknownItemError)
    try:
        arrays = load_file(str(path / STATE))
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(f"Bundle {path} is corrupt: {STATE} cannot be read ({exc}).") from None
    meta = manifest.get("state_meta") or {}
    if not isinstance(meta, dict):
        raise BundleError(f"The manifest of bundle {path} has malformed state meta.")
    try:
        model.load_state_dict(ModelState(arrays=arrays, meta=meta), users, items)
    except (ConfigError, KeyError, ValueError, TypeError, IndexError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise BundleError(f"Bundle {path} holds a state that does not fit its model or ID maps ({detail}).") from None
    catalog = _read_catalog(path, items, manifest.get("catalog_genres"))
    extras = {name: (path / name).read_bytes() for name in sorted(manifest["files"]) if name not in REQUIRED_FILES}
    return Bundle(model=model, catalog=catalog, manifest=manifest, path=path, extras=extras)
