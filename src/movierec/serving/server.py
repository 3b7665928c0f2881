"""`ModelServer`: loads, swaps, promotes, rolls back, reloads and watches the served model.

It serves the registry's current version of one name (or one bundle folder) as one
immutable `ServedModel` behind one reference (`ModelServer.current`), swapped in one
assignment: a request reads `current` once and answers from that version alone.

A version that fails to load -- checksums, a newer format, or anything `ServedModel.build`
refuses -- is refused and the old one keeps serving; promote and rollback move the
registry's pointer only after the version they name has loaded. Every worker process
watches the pointer file (`ModelRegistry.read_pointer`, the registry's one reader) and
swaps in the version it names, so a promote made anywhere (the CLI, another worker's admin
endpoint) is served by every worker within a poll interval. A pointer that cannot be read
or names a version that cannot be loaded never stops the service: the reason is kept in
`last_error` (cleared once the pointer names the served version again, or a load succeeds).

Versions an A/B experiment's variants name are kept loaded beside the current one
(`pin`, `served_version`); a promotion or rollback to a pinned version swaps in the loaded
one instead of loading it again.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Callable

from movierec.artifacts import Bundle, ModelRegistry, is_bundle_dir, load_bundle
from movierec.artifacts.registry import Pointer
from movierec.errors import BundleError, MovierecError, RegistryError
from movierec.serving.cache import AnswerCache
from movierec.serving.settings import CACHE_SIZE
from movierec.serving.state import DEFAULT_GROUPS, ServedModel

#: what identifies one state of the pointer file: (mtime in ns, size, inode), None when absent
Signature = tuple[int, int, int] | None


def limit_threads(n: int) -> None:
    """Limit BLAS/OpenMP (and torch, when loaded) to `n` threads in this process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def check_source(source: str | Path, name: str | None = None) -> str | None:
    """The registry name `ModelServer(source, name)` would serve, checked without loading a
    model (None for a single bundle folder, whose name is its manifest's).

    Raises:
        RegistryError: no such folder, an empty registry, no `name` for a registry holding
            several names (the sentence lists them), an unknown name, no current version,
            a corrupt pointer.
    """
    source = Path(source)
    if not source.is_dir():
        raise RegistryError(f"No model registry or bundle folder at {source}.")
    if is_bundle_dir(source):
        return None
    registry = ModelRegistry(source)
    name = registry.resolve(name, "name the one to serve")
    registry.get(name)
    return name


def _warm(served: ServedModel) -> None:
    """Compute the default taste groups in the background (a first visit asks for them)."""

    def run() -> None:
        try:
            served.groups(DEFAULT_GROUPS)
        except Exception:  # pragma: no cover - the request asking for them will report it
            pass

    threading.Thread(target=run, name="movierec-warm-groups", daemon=True).start()


class ModelServer:
    """Serves the current version of one registry name (or one bundle folder).

    Args:
        source: a registry folder, or a single bundle folder.
        name: the registry name (may be left out when the registry holds one name).
        cache_size: GET /recommend answers cached per loaded model (0: none).
        cache: the answer cache shared by workers and replicas (a `RedisCache`), or None:
            each loaded version keeps its own in this process.

    Raises:
        RegistryError: no such folder, an empty registry, no `name` for a registry holding
            several names, an unknown name, no current version, a corrupt pointer.
        BundleError: the current version fails to load or cannot be served.
    """

    def __init__(self, source: str | Path, name: str | None = None, *, cache_size: int = CACHE_SIZE,
                 cache: AnswerCache | None = None) -> None:
        self.source = Path(source)
        self.cache_size = cache_size
        self.cache = cache
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._signature: Signature = None
        self._threads: int | None = None
        self._pinned: dict[str, ServedModel] = {}
        registry_name = check_source(self.source, name)
        if registry_name is None:  # a single bundle folder
            self.registry: ModelRegistry | None = None
            bundle = load_bundle(self.source)
            self.name = name or bundle.name
            self._current = self._build(bundle, bundle.version)
        else:
            self.registry = ModelRegistry(self.source)
            self.name = registry_name
            self._signature = self._pointer_signature()
            self._current = self._load(None)
        _warm(self._current)

    @property
    def current(self) -> ServedModel:
        """The model version serving now (read it once per request)."""
        return self._current

    @property
    def threads(self) -> int | None:
        """The BLAS/OpenMP threads this process serves with (None: left as they were)."""
        return self._threads

    def _swap(self, new: ServedModel) -> ServedModel:
        """Make `new` current in one reference assignment; returns the previous one."""
        previous, self._current = self._current, new
        if self._threads:  # a new model may have loaded a library with its own thread pool
            limit_threads(self._threads)
        _warm(new)
        return previous

    def limit_threads(self, n: int | None) -> None:
        """Serve with `n` BLAS/OpenMP (and torch) threads in this process, now and after every
        swap (None: leave them as they are). One request is one small product: several
        threads per request fight over the cores and are many times slower under load."""
        self._threads = n
        if n:
            limit_threads(n)

    # -- loading --------------------------------------------------------------------------
    def _build(self, bundle: Bundle, version: str | None) -> ServedModel:
        """`ServedModel.build`, with what it refuses (text IDs, ...) reported as a bundle
        that cannot be served (409 over HTTP), like one that does not load."""
        try:
            return ServedModel.build(bundle, self.name, version, cache_size=self.cache_size, shared_cache=self.cache)
        except BundleError:
            raise
        except MovierecError as exc:
            where = f"version {version} of {self.name!r}" if version is not None else f"the bundle {self.source}"
            raise BundleError(f"The service cannot serve {where}: {exc}") from None

    def _load_folder(self) -> ServedModel:
        bundle = load_bundle(self.source)
        return self._build(bundle, bundle.version)

    def _need_registry(self) -> ModelRegistry:
        if self.registry is None:
            raise RegistryError(f"The service serves the single bundle folder {self.source}, not a registry, "
                                "so it has no versions to move between.")
        return self.registry

    def _load(self, version: str | None) -> ServedModel:
        """Load `version` of the name (None: the one the pointer names) into a ServedModel
        (a pinned version is the one already loaded)."""
        found = self._need_registry().get(self.name, version)
        pinned = self._pinned.get(found.version)
        if pinned is not None:
            return pinned
        return self._build(load_bundle(found.path), found.version)

    # -- versions kept loaded for experiments ----------------------------------------------
    def pin(self, version: str) -> ServedModel:
        """Keep `version` loaded beside the current one (an experiment's variant answers
        from it, whatever is promoted meanwhile); returns it.

        Raises:
            RegistryError: an unknown version, or a bundle folder (which has no versions)
                asked for a version other than its own.
            BundleError: the version fails to load or cannot be served.
        """
        version = str(version)
        with self._lock:
            found = self._pinned.get(version)
            if found is None:
                current = self._current
                found = current if current.version == version else self._load(version)
                self._pinned[version] = found
            return found

    def served_version(self, version: str | None) -> ServedModel:
        """The loaded `ServedModel` of `version` (None: the current one); a version not
        pinned yet is pinned (`pin`)."""
        if version is None:
            return self._current
        found = self._pinned.get(version)
        return found if found is not None else self.pin(version)

    @property
    def pinned(self) -> list[str]:
        """The versions kept loaded for experiments."""
        return sorted(self._pinned)

    # -- the registry's pointer -----------------------------------------------------------
    def _pointer_signature(self) -> Signature:
        try:
            st = self._need_registry().pointer_path(self.name).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def read_pointer(self) -> Pointer:
        """The registry's pointer of the served name, read by the registry's own reader.

        Raises:
            RegistryError: for a bundle folder (no pointer), or a corrupt pointer file.
        """
        return self._need_registry().read_pointer(self.name)

    # -- changes --------------------------------------------------------------------------
    def _change(self, load: Callable[[], ServedModel]) -> tuple[ServedModel, ServedModel]:
        """Run `load` (which may move the registry's pointer) under the lock and swap its
        model in; returns (previous, new). On failure the old model keeps serving and the
        reason is kept in `last_error`.

        The pointer's signature is taken BEFORE loading: a pointer moved elsewhere while
        `load` runs then still counts as a change, and the watcher serves what it names."""
        with self._lock:
            signature = self._pointer_signature() if self.registry is not None else None
            try:
                new = load()
            except MovierecError as exc:
                self.last_error = str(exc)
                raise
            if self.registry is not None:
                self._signature = signature
            self.last_error = None
            return self._swap(new), new

    def reload(self) -> tuple[ServedModel, ServedModel]:
        """Load the version the registry's pointer names (the folder again, for a bundle
        folder) and swap it in; returns (previous, new). On failure the old one keeps serving."""
        return self._change(self._load_folder if self.registry is None else lambda: self._load(None))

    def promote(self, version: str) -> tuple[ServedModel, ServedModel]:
        """Load `version`, then make it the registry's current one, and serve it; returns
        (previous, new). A version that fails to load is refused: the pointer never moves."""
        registry = self._need_registry()

        def load() -> ServedModel:
            new = self._load(version)
            registry.promote(self.name, new.version)
            return new

        return self._change(load)

    def rollback(self) -> tuple[ServedModel, ServedModel]:
        """Serve the previously current version again and move the registry's pointer back;
        returns (previous, new). A version that fails to load is refused; nothing changes."""
        registry = self._need_registry()

        def load() -> ServedModel:
            history = self.read_pointer().history
            if not history:
                raise RegistryError(f"Model {self.name!r} has no earlier version to roll back to.")
            new = self._load(history[-1])
            moved = registry.rollback(self.name)
            if moved.version != new.version:  # the pointer moved meanwhile: serve what it names
                new = self._load(moved.version)
            return new

        return self._change(load)

    # -- watching -------------------------------------------------------------------------
    def poll(self) -> bool:
        """Swap in the version the pointer names if the pointer changed since the last look;
        returns whether the model was swapped.

        A pointer that cannot be read, or names a version that fails to load, is recorded
        in `last_error` (the old version keeps serving) and looked at again only when the
        pointer changes again; `last_error` is cleared when the pointer names the served
        version again."""
        if self.registry is None:
            return False
        signature = self._pointer_signature()
        if signature == self._signature:
            return False
        with self._lock:
            signature = self._pointer_signature()
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                wanted = self.read_pointer().version
            except RegistryError as exc:
                self.last_error = str(exc)
                return False
            if wanted is None:
                return False
            if wanted == self._current.version:
                self.last_error = None
                return False
            try:
                new = self._load(wanted)
            except MovierecError as exc:
                self.last_error = str(exc)
                return False
            self.last_error = None
            self._swap(new)
            return True

    def start_watching(self, interval: float) -> None:
        """Poll the pointer every `interval` seconds in a daemon thread (no-op for a bundle
        folder or interval <= 0)."""
        if self.registry is None or interval <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll()
                except Exception as exc:  # keep watching whatever happens to one poll
                    self.last_error = f"Watching the registry failed: {exc}."

        self._thread = threading.Thread(target=loop, name="movierec-registry-watch", daemon=True)
        self._thread.start()

    def stop_watching(self) -> None:
        """Stop the watcher thread (waits for a poll in progress, at most 5 s)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)


__all__ = ["ModelServer", "check_source", "limit_threads"]
