"""A model registry: numbered versions of bundles per name, and a current pointer.

Layout::

    <root>/<name>/1/, 2/, ...     bundle folders (see `movierec.artifacts.bundle`)
    <root>/<name>/CURRENT.json    {"version": "3", "history": ["1", "2"], "updated": "..."}
    <root>/<name>/.lock           lock file around version allocation and pointer moves

Version numbers are allocated with `os.mkdir` (which fails when the folder exists) under
a file lock, so concurrent adds get distinct numbers; a number is never handed out twice
while its folder or a pointer mentions it. The pointer is replaced atomically (temp
file, fsync, rename, fsync of the folder), so readers see the old or the new pointer,
never half of one. `history` lists the previously current versions, oldest first:
promote pushes, rollback pops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from movierec.artifacts.bundle import Bundle, is_bundle_dir, load_bundle, save_bundle, verify_bundle
from movierec.data.atomic import atomic_write
from movierec.errors import BundleError, RegistryError

POINTER = "CURRENT.json"
LOCK = ".lock"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^[1-9][0-9]*$")


@dataclass(frozen=True)
class Pointer:
    """A name's current-version pointer (`<root>/<name>/CURRENT.json`) as stored.

    Attributes:
        version: the current version, None when none was promoted yet.
        history: the previously current versions, oldest first (promote pushes,
            rollback pops).
    """

    version: str | None
    history: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelVersion:
    """One stored version of a named model.

    Attributes:
        name: the registry name.
        version: "1", "2", ...
        path: its bundle folder.
        current: whether the name's pointer points here.
        manifest: its manifest.json as read without verification ({} when unreadable).
    """

    name: str
    version: str
    path: Path
    current: bool
    manifest: dict = field(repr=False, compare=False)

    @property
    def created(self) -> str | None:
        return self.manifest.get("created")

    @property
    def metrics(self) -> dict:
        return dict(self.manifest.get("metrics") or {})

    @property
    def model_name(self) -> str | None:
        return self.manifest.get("model_name")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed), across threads and processes."""
    fh = open(path, "a+")
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: rely on os.mkdir / os.replace atomicity
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


class ModelRegistry:
    """Versions of bundles under `root`, one folder per name, with a current pointer."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- paths ----------------------------------------------------------------------
    def _check_name(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(f"{name!r} is not a valid registry name (letters, digits, '.', '_' and '-').")
        return name

    def _dir(self, name: str) -> Path:
        return self.root / self._check_name(name)

    def check_writable(self, name: str | None = None) -> None:
        """Refuse, before any work is done, a root or a name folder that is not a folder.

        Raises:
            RegistryError: when the root (or `<root>/<name>`) exists but is a file.
        """
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.root} is a file, not a model registry folder; name a folder.")
        if name is not None:
            folder = self._dir(name)
            if folder.exists() and not folder.is_dir():
                raise RegistryError(f"{folder} is a file, so the registry cannot keep versions of {name!r} there.")

    def pointer_path(self, name: str) -> Path:
        """`<root>/<name>/CURRENT.json`, the name's current-version pointer."""
        return self._dir(name) / POINTER

    def read_pointer(self, name: str) -> Pointer:
        """The name's pointer as stored (the one reader: the registry and the service use it).

        A missing pointer file is an empty pointer (no version promoted yet).

        Raises:
            RegistryError: for an invalid name, or a pointer file that is unreadable or not
                {"version": text or null, "history": [text, ...]} (corrupt).
        """
        path = self.pointer_path(name)
        if not path.exists():
            return Pointer(None, ())
        data = _read_json(path)
        history = data.get("history", []) if isinstance(data, dict) else None
        if (not isinstance(data, dict) or not isinstance(history, list)
                or not all(isinstance(v, str) for v in history)
                or not (data.get("version") is None or isinstance(data.get("version"), str))):
            raise RegistryError(f"The pointer {path} is corrupt; promote a version to rewrite it.")
        return Pointer(data.get("version"), tuple(history))

    def _write_pointer(self, name: str, version: str, history: list[str]) -> None:
        path = self.pointer_path(name)
        payload = {"version": version, "history": list(history),
                   "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with atomic_write(path) as fh:
            json.dump(payload, fh, indent=2)

    # -- listing --------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.match(p.name) and self._version_dirs(p))

    @staticmethod
    def _version_dirs(folder: Path) -> list[Path]:
        dirs = [p for p in folder.iterdir() if _VERSION.match(p.name) and p.is_dir() and (p / "manifest.json").exists()]
        return sorted(dirs, key=lambda p: int(p.name))

    def _version(self, name: str, folder: Path, current: str | None) -> ModelVersion:
        manifest = _read_json(folder / "manifest.json")
        return ModelVersion(name=name, version=folder.name, path=folder, current=folder.name == current,
                            manifest=manifest if isinstance(manifest, dict) else {})

    def resolve(self, name: str | None, hint: str = "name one") -> str:
        """`name`, or the registry's only name when None; several names and none given is
        refused (one sentence listing them, ending with `hint`), as is an empty registry.

        Raises:
            RegistryError: an empty registry, or several names and `name` None.
        """
        names = self.names()
        if not names:
            raise RegistryError(f"The registry {self.root} holds no models; train one into it first.")
        if name is None:
            if len(names) > 1:
                raise RegistryError(f"The registry {self.root} holds several models ({', '.join(names)}); {hint}.")
            return names[0]
        return name

    def versions(self, name: str) -> list[ModelVersion]:
        """Every stored version of `name`, oldest first ([] for an unknown name)."""
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        current = self.read_pointer(name).version
        return [self._version(name, p, current) for p in self._version_dirs(folder)]

    def current(self, name: str) -> ModelVersion | None:
        """The current version of `name`, or None when none was promoted."""
        folder = self._dir(name)
        if not folder.is_dir():
            return None
        current = self.read_pointer(name).version
        if current is None or not (folder / current).is_dir():
            return None
        return self._version(name, folder / current, current)

    def get(self, name: str, version: str | int | None = None) -> ModelVersion:
        """One version of `name` (None: the current one).

        Raises:
            RegistryError: for an unknown name or version, listing what exists.
        """
        versions = self.versions(name)
        if not versions:
            known = self.names()
            holds = f"it holds {', '.join(known)}" if known else "it is empty"
            raise RegistryError(f"The registry {self.root} has no model named {name!r}; {holds}.")
        listed = ", ".join(v.version for v in versions)
        if version is None:
            for v in versions:
                if v.current:
                    return v
            raise RegistryError(f"Model {name!r} has no current version; promote one of: {listed}.")
        for v in versions:
            if v.version == str(version):
                return v
        raise RegistryError(f"Model {name!r} has no version {version}; it has: {listed}.")

    def load(self, name: str, version: str | int | None = None) -> Bundle:
        """The verified bundle of one version of `name` (None: the current one)."""
        return load_bundle(self.get(name, version).path)

    # -- changing -------------------------------------------------------------------
    def _allocate(self, name: str, folder: Path) -> str:
        """Reserve the next version number by creating its (empty) folder."""
        with _locked(folder / LOCK):
            pointer = self.read_pointer(name)
            used = [int(p.name) for p in folder.iterdir() if _VERSION.match(p.name)]
            used += [int(v) for v in [pointer.version, *pointer.history] if v and _VERSION.match(v)]
            number = max(used, default=0) + 1
            while True:
                try:
                    os.mkdir(folder / str(number))
                    return str(number)
                except FileExistsError:
                    number += 1

    def add(self, bundle: Bundle, name: str | None = None, *, promote: bool | None = None) -> ModelVersion:
        """Store `bundle` as the next version of `name` (default: the model's name).

        Args:
            bundle: the bundle to store; its manifest gets "version" and "registry_name".
            name: registry name; defaults to `bundle.model.name`.
            promote: make it current; None promotes only when `name` has no current version.

        Returns:
            The new version.
        """
        name = self._check_name(name or bundle.model.name)
        self.check_writable(name)
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        version = self._allocate(name, folder)
        target = folder / version
        # save a copy: concurrent adds of one Bundle object must not share a manifest
        stored = replace(bundle, manifest={**bundle.manifest, "version": version, "registry_name": name})
        try:
            save_bundle(stored, target, overwrite=False)
        except BaseException:
            if target.is_dir() and not is_bundle_dir(target):
                shutil.rmtree(target, ignore_errors=True)
            raise
        bundle.manifest, bundle.path = stored.manifest, stored.path
        with _locked(folder / LOCK):
            pointer = self.read_pointer(name)
            if promote or (promote is None and pointer.version is None):
                self._move_pointer(name, pointer, version)
        return self.get(name, version)

    def _move_pointer(self, name: str, pointer: Pointer, version: str) -> None:
        if pointer.version == version:
            return
        history = list(pointer.history)
        if pointer.version is not None:
            history.append(pointer.version)
        self._write_pointer(name, version, history)

    def promote(self, name: str, version: str | int) -> ModelVersion:
        """Make `version` the current version of `name`, after verifying its bundle.

        Raises:
            RegistryError: for an unknown name or version.
            BundleError: when the version's bundle fails verification.
        """
        target = self.get(name, version)
        verify_bundle(target.path)
        with _locked(self._dir(name) / LOCK):
            self._move_pointer(name, self.read_pointer(name), target.version)
        return self.get(name, target.version)

    def rollback(self, name: str) -> ModelVersion:
        """Make the previously current version of `name` current again.

        Raises:
            RegistryError: when `name` has no earlier current version (or it was deleted).
            BundleError: when that version's bundle fails verification.
        """
        if not self.versions(name):
            self.get(name)  # raises, naming what the registry holds
        with _locked(self._dir(name) / LOCK):
            pointer = self.read_pointer(name)
            if not pointer.history:
                raise RegistryError(f"Model {name!r} has no earlier version to roll back to.")
            previous = pointer.history[-1]
            target = self.get(name, previous)
            verify_bundle(target.path)
            self._write_pointer(name, previous, list(pointer.history[:-1]))
        return self.get(name, previous)

    def verify(self, name: str | None = None, version: str | int | None = None) -> list[tuple[ModelVersion, str | None]]:
        """Verify stored bundles: every version of every name, of one name, or one version.

        Returns:
            (version, None when it verifies, else the one-sentence reason), in name and
            version order.
        """
        if name is None:
            if version is not None:
                raise RegistryError("Name a model to verify one of its versions.")
            targets = [v for n in self.names() for v in self.versions(n)]
        elif version is None:
            targets = self.versions(name) or [self.get(name, None)]
        else:
            targets = [self.get(name, version)]
        results: list[tuple[ModelVersion, str | None]] = []
        for v in targets:
            try:
                verify_bundle(v.path)
                results.append((v, None))
            except BundleError as exc:
                results.append((v, str(exc)))
        return results
