"""Download (or copy from a mirror) -> verify -> extract atomically into the cache."""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from movierec import config
from movierec.data.checksum import file_sha256
from movierec.data.movielens import MovieLensSpec, get_spec
from movierec.errors import FetchError

#: progress(bytes_done, bytes_total_or_None)
ProgressFn = Callable[[int, "int | None"], None]

VERIFIED_MARKER = ".movierec-verified.json"
CHUNK = 1 << 20


def cached_path(name: str, cache: Path | None = None) -> Path:
    """Where dataset `name` lives once fetched."""
    return Path(cache or config.cache_dir()) / name


def is_cached(name: str, cache: Path | None = None) -> bool:
    return (cached_path(name, cache) / VERIFIED_MARKER).is_file()


def source_url(spec: MovieLensSpec, mirror: str | None) -> str:
    """The archive's URL: from the mirror if one is set, else GroupLens' official host."""
    if not mirror:
        return spec.url
    if "://" in mirror:
        return mirror.rstrip("/") + f"/{spec.name}.zip"
    return Path(mirror).expanduser().resolve().joinpath(f"{spec.name}.zip").as_uri()


def _copy_stream(src, dst, total: int | None, progress: ProgressFn | None) -> int:
    """Copy in chunks, reporting progress; returns the number of bytes copied."""
    done = 0
    if progress:
        progress(0, total)
    while True:
        block = src.read(CHUNK)
        if not block:
            break
        dst.write(block)
        done += len(block)
        if progress:
            progress(done, total)
    return done


def download(url: str, dest: Path, progress: ProgressFn | None = None, name: str = "", timeout: float = 30) -> None:
    """Fetch `url` (http(s) or file://) to `dest`, raising FetchError with one clear sentence."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        src = Path(urllib.request.url2pathname(parsed.path))
        if not src.is_file():
            raise FetchError(f"The mirror has no {src.name} (looked for {src}); check MOVIEREC_MIRROR.")
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            _copy_stream(fin, fout, src.stat().st_size, progress)
        return
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as fout:
            length = resp.headers.get("Content-Length")
            total = int(length) if length else None
            done = _copy_stream(resp, fout, total, progress)
        if total is not None and done < total:
            raise FetchError(
                f"Downloading {name or url} stopped after {done:,} of {total:,} bytes; try again."
            )
    except urllib.error.HTTPError as exc:
        raise FetchError(f"Downloading {name or url} failed: {url} answered HTTP {exc.code} {exc.reason}.") from None
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the server broke off mid-transfer
        raise FetchError(
            f"Downloading {name or url} from {parsed.netloc or url} broke off ({type(exc).__name__}); try again."
        ) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"Cannot download {name or url} from {parsed.netloc or url} ({reason}); if this machine is offline, "
            f"set {config.MIRROR_ENV} to a folder or URL that holds {name or 'the'}.zip."
        ) from None


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK * 8), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def verify_extracted(spec: MovieLensSpec, folder: Path) -> dict:
    """Check an extracted archive: expected files, schema, checksums, published row counts.

    Returns facts recorded in the cache marker. Raises FetchError when anything is off.
    """
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        raise FetchError(f"The {spec.name} archive lacks {', '.join(missing)}; it is not a genuine {spec.name}.zip.")
    for fname, digest in spec.sha256.items():
        if file_sha256(folder / fname) != digest:
            raise FetchError(f"{spec.name}/{fname} does not match its published checksum; the download is corrupt.")
    ratings = folder / spec.ratings_file
    with open(ratings, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").strip()
    if spec.layout == "csv":
        if first.replace(" ", "") != "userId,movieId,rating,timestamp":
            raise FetchError(f"{spec.name}/{spec.ratings_file} has an unexpected header {first[:60]!r}.")
        n = _count_lines(ratings) - 1
    else:
        sep = "\t" if spec.layout == "100k" else "::"
        if len(first.split(sep)) != 4:
            raise FetchError(f"{spec.name}/{spec.ratings_file} does not have 4 {sep!r}-separated fields per line.")
        n = _count_lines(ratings)
    if spec.n_ratings is not None and n != spec.n_ratings:
        raise FetchError(
            f"{spec.name}/{spec.ratings_file} has {n:,} ratings, not the published {spec.n_ratings:,}; the download is corrupt or truncated."
        )
    if n <= 0:
        raise FetchError(f"{spec.name}/{spec.ratings_file} holds no ratings.")
    return {"n_ratings": n}


def extract_verified(spec: MovieLensSpec, archive: Path, target: Path, replace: bool = False) -> Path:
    """Extract `archive` next to `target`, verify, then rename into place atomically.

    A verified copy already at `target` is kept unless `replace` is set; it is swapped
    out only once the new copy has been verified.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.extract.", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise FetchError(f"The {spec.name} archive is corrupt ({bad} fails its CRC check).")
                zf.extractall(tmp)
        except zipfile.BadZipFile:
            raise FetchError(f"The downloaded {spec.name}.zip is not a valid zip archive (corrupt or truncated).") from None
        except (EOFError, zipfile.LargeZipFile, OSError) as exc:
            if isinstance(exc, FetchError):
                raise
            raise FetchError(f"The downloaded {spec.name}.zip could not be extracted ({exc}).") from None
        inner = tmp / spec.folder
        if not inner.is_dir():
            raise FetchError(f"The {spec.name} archive has no top-level folder {spec.folder}/.")
        facts = verify_extracted(spec, inner)
        facts.update({"name": spec.name, "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        (inner / VERIFIED_MARKER).write_text(json.dumps(facts))
        if not replace and (target / VERIFIED_MARKER).is_file():
            return target  # another process finished the same fetch first
        if target.exists():  # an unverified leftover, or the copy a forced fetch replaces
            try:
                target.rename(tmp / "replaced")  # removed with tmp below
            except FileNotFoundError:  # another process moved it first
                pass
        try:
            inner.rename(target)
        except OSError:
            if not (target / VERIFIED_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch(
    name: str,
    cache: Path | None = None,
    mirror: str | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> Path:
    """Make dataset `name` available in the cache and return its folder.

    Args:
        name: a known dataset name (see `movierec.data.movielens.DATASETS`).
        cache: cache folder; defaults to `movierec.config.cache_dir()`.
        mirror: folder or URL holding `<name>.zip`; defaults to `$MOVIEREC_MIRROR`,
            else GroupLens' official host.
        progress: called with (bytes done, bytes total or None) while downloading.
        force: fetch again even if a verified copy is cached.
    """
    spec = get_spec(name)
    cache = Path(cache or config.cache_dir())
    target = cache / name
    if not force and (target / VERIFIED_MARKER).is_file():
        return target
    url = source_url(spec, mirror if mirror is not None else config.mirror())
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"Cannot create the cache folder {cache} ({exc.strerror}); set {config.CACHE_ENV}.") from None
    # One fetch of a dataset at a time per cache (parallel test workers, two shells):
    # the others wait, then find the verified copy.
    with open(cache / f".{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (target / VERIFIED_MARKER).is_file():
            return target
        fd, tmpname = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=cache)
        archive = Path(tmpname)
        try:
            with open(fd, "wb"):
                pass
            download(url, archive, progress, name=name)
            return extract_verified(spec, archive, target, replace=force)
        finally:
            archive.unlink(missing_ok=True)
