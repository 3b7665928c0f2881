"""Fetching: mirror folder, file:// URL, real HTTP on loopback, verification, atomic cache."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import mirror_dir
from fixtures.movielens_files import write_csv_family, write_ml1m, write_ml10m, zip_folder
from movierec import config
from movierec.data import load_movielens
from movierec.data.fetch import VERIFIED_MARKER, cached_path, fetch, is_cached, source_url
from movierec.data.movielens import DATASETS, get_spec, parse_movielens
from movierec.errors import DatasetError, FetchError

MIRROR = mirror_dir()
REQUIRED = ["ml-100k", "ml-latest-small", "ml-1m", "ml-10m", "ml-25m", "ml-32m"]


def leftovers(cache: Path) -> list[str]:
    """Everything in the cache folder but the fetch lock files (a failed fetch must leave
    no data, archive or temp folder behind)."""
    if not cache.exists():
        return []
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


# -- the HTTP server: a real ThreadingHTTPServer on 127.0.0.1 -------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def http_mirror(tmp_path):
    """(url, folder): an HTTP server on loopback serving `folder`."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


class _CutShortHandler(http.server.BaseHTTPRequestHandler):
    """Announces 100,000 bytes, sends 5,000, hangs up: a download cut short."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"PK\x03\x04" + b"x" * 4996)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def cut_short_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutShortHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- known datasets ------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_dataset_is_known_with_its_grouplens_url(name):
    spec = get_spec(name)
    assert source_url(spec, None) == f"https://files.grouplens.org/datasets/movielens/{name}.zip"


def test_published_row_counts():
    assert DATASETS["ml-100k"].n_ratings == 100_000
    assert DATASETS["ml-1m"].n_ratings == 1_000_209
    assert DATASETS["ml-25m"].n_ratings == 25_000_095
    assert DATASETS["ml-latest-small"].n_ratings is None  # a living dataset: schema and sanity only


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(DatasetError, match="Unknown dataset 'ml-99'.*ml-100k"):
        fetch("ml-99", cache=tmp_path, mirror=str(MIRROR))


def test_mirror_urls():
    spec = get_spec("ml-1m")
    assert source_url(spec, "http://host/x/") == "http://host/x/ml-1m.zip"
    assert source_url(spec, str(MIRROR)) == (MIRROR.resolve() / "ml-1m.zip").as_uri()


# -- settings ------------------------------------------------------------------------
def test_cache_dir_env_overrides_default(monkeypatch, tmp_path):
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(config.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "movierec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert config.cache_dir() == Path.home() / ".cache" / "movierec"


def test_mirror_env(monkeypatch):
    monkeypatch.setenv(config.MIRROR_ENV, "  ")
    assert config.mirror() is None
    monkeypatch.setenv(config.MIRROR_ENV, "/some/folder")
    assert config.mirror() == "/some/folder"


# -- good fetches ----------------------------------------------------------------------
def test_fetch_from_mirror_folder_verifies_and_caches(tmp_path):
    cache = tmp_path / "cache"
    seen = []
    folder = fetch("ml-100k", cache=cache, mirror=str(MIRROR), progress=lambda done, total: seen.append((done, total)))
    assert folder == cached_path("ml-100k", cache) and is_cached("ml-100k", cache)
    assert (folder / "u.data").is_file() and (folder / "u1.base").is_file()
    marker = json.loads((folder / VERIFIED_MARKER).read_text())
    assert marker["n_ratings"] == 100_000 and marker["name"] == "ml-100k"
    size = (MIRROR / "ml-100k.zip").stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)  # the progress bar's feed
    assert leftovers(cache) == ["ml-100k"]  # no temp files


def test_fetch_uses_env_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "envcache"))
    monkeypatch.setenv(config.MIRROR_ENV, str(MIRROR))
    folder = fetch("ml-latest-small")
    assert folder == tmp_path / "envcache" / "ml-latest-small"
    assert {"ratings.csv", "movies.csv", "tags.csv", "links.csv"} <= {p.name for p in folder.iterdir()}


def test_fetch_from_file_url(tmp_path):
    folder = fetch("ml-latest-small", cache=tmp_path, mirror=MIRROR.resolve().as_uri())
    assert is_cached("ml-latest-small", tmp_path)
    assert parse_movielens(get_spec("ml-latest-small"), folder).n_ratings == 100_836


def test_fetch_over_real_http(tmp_path, http_mirror):
    url, served = http_mirror
    shutil.copy(MIRROR / "ml-100k.zip", served / "ml-100k.zip")
    seen = []
    cache = tmp_path / "cache"
    folder = fetch("ml-100k", cache=cache, mirror=url, progress=lambda d, t: seen.append((d, t)))
    assert is_cached("ml-100k", cache)
    size = (served / "ml-100k.zip").stat().st_size
    assert seen[-1] == (size, size)  # Content-Length reached the progress callback
    ds = parse_movielens(get_spec("ml-100k"), folder)
    assert (ds.n_ratings, ds.n_users, ds.n_items) == (100_000, 943, 1682)
    assert leftovers(cache) == ["ml-100k"]


def test_http_404_is_a_clear_fetch_error(tmp_path, http_mirror):
    url, _ = http_mirror
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("ml-1m", cache=tmp_path / "cache", mirror=url)
    assert leftovers(tmp_path / "cache") == []


def test_cache_is_reused_without_the_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(MIRROR / "ml-latest-small.zip", mirror)
    cache = tmp_path / "cache"
    first = fetch("ml-latest-small", cache=cache, mirror=str(mirror))
    stamp = (first / VERIFIED_MARKER).stat().st_mtime_ns
    shutil.rmtree(mirror)  # a second fetch must not download
    again = fetch("ml-latest-small", cache=cache, mirror=str(mirror))
    assert again == first and (again / VERIFIED_MARKER).stat().st_mtime_ns == stamp
    assert load_movielens("ml-latest-small", cache=cache, mirror=str(mirror)).n_users == 610
    with pytest.raises(FetchError, match="MOVIEREC_MIRROR"):  # force does download, and says why it can't
        fetch("ml-latest-small", cache=cache, mirror=str(mirror), force=True)
    assert is_cached("ml-latest-small", cache)  # a failed forced fetch keeps the good copy


def test_force_fetches_again(tmp_path):
    first = fetch("ml-latest-small", cache=tmp_path, mirror=str(MIRROR))
    (first / "stray.txt").write_text("x")
    again = fetch("ml-latest-small", cache=tmp_path, mirror=str(MIRROR), force=True)
    assert again == first and not (again / "stray.txt").exists() and is_cached("ml-latest-small", tmp_path)


def test_unverified_leftover_is_replaced(tmp_path):
    junk = tmp_path / "ml-latest-small"
    junk.mkdir()
    (junk / "ratings.csv").write_text("half a file")
    assert not is_cached("ml-latest-small", tmp_path)
    folder = fetch("ml-latest-small", cache=tmp_path, mirror=str(MIRROR))
    assert is_cached("ml-latest-small", tmp_path)
    assert (folder / "ratings.csv").stat().st_size > 1000


def test_latest_small_is_checked_for_schema_and_sanity_only(tmp_path):
    """A living dataset has no published count: a tiny but well-formed archive passes."""
    src = write_csv_family(tmp_path / "src" / "ml-latest-small", extra=True)
    zip_folder(src, tmp_path / "mirror" / "ml-latest-small.zip")
    folder = fetch("ml-latest-small", cache=tmp_path / "cache", mirror=str(tmp_path / "mirror"))
    assert json.loads((folder / VERIFIED_MARKER).read_text())["n_ratings"] == 5


# -- bad archives: a clear FetchError, no cache entry, no temp files ---------------------
def _truncated(tmp_path: Path) -> Path:
    data = (MIRROR / "ml-100k.zip").read_bytes()
    out = tmp_path / "m" / "ml-100k.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[: len(data) // 2])
    return out


def _not_a_zip(tmp_path: Path) -> Path:
    out = tmp_path / "m" / "ml-1m.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"<html>Service unavailable</html>" * 40)
    return out


def _crc_corrupt(tmp_path: Path) -> Path:
    # stored (uncompressed) so that flipping one byte of content breaks only the CRC
    src = write_ml1m(tmp_path / "src" / "ml-1m")
    out = tmp_path / "m" / "ml-1m.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for f in ("ratings.dat", "movies.dat", "users.dat"):
            zf.write(src / f, f"ml-1m/{f}")
    data = bytearray(out.read_bytes())
    pos = data.find(b"1::1193::5")
    data[pos + 9] = ord("4")
    out.write_bytes(bytes(data))
    return out


def _small_1m(tmp_path: Path) -> Path:
    return zip_folder(write_ml1m(tmp_path / "src" / "ml-1m"), tmp_path / "m" / "ml-1m.zip")


def _small_10m(tmp_path: Path) -> Path:
    return zip_folder(write_ml10m(tmp_path / "src" / "ml-10M100K"), tmp_path / "m" / "ml-10m.zip")


def _small_25m(tmp_path: Path) -> Path:
    return zip_folder(write_csv_family(tmp_path / "src" / "ml-25m"), tmp_path / "m" / "ml-25m.zip")


def _1m_missing_file(tmp_path: Path) -> Path:
    src = write_ml1m(tmp_path / "src" / "ml-1m")
    (src / "movies.dat").unlink()
    return zip_folder(src, tmp_path / "m" / "ml-1m.zip")


def _1m_wrong_folder(tmp_path: Path) -> Path:
    return zip_folder(write_ml1m(tmp_path / "src" / "ml-1m"), tmp_path / "m" / "ml-1m.zip", inner="")


def _100k_tampered(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "ml-100k"
    with zipfile.ZipFile(MIRROR / "ml-100k.zip") as zf:
        zf.extractall(tmp_path / "src")
    data = (src / "u.data").read_bytes()
    (src / "u.data").write_bytes(data.replace(b"\t3\t", b"\t4\t", 1))  # same length, same count
    return zip_folder(src, tmp_path / "m" / "ml-100k.zip", compression=zipfile.ZIP_STORED)


def _latest_small_bad_header(tmp_path: Path) -> Path:
    src = write_csv_family(tmp_path / "src" / "ml-latest-small", extra=True)
    text = (src / "ratings.csv").read_text()
    (src / "ratings.csv").write_text(text.replace("userId,movieId", "user,movie", 1))
    return zip_folder(src, tmp_path / "m" / "ml-latest-small.zip")


BAD_ARCHIVES = {
    "truncated": (_truncated, "ml-100k", "not a valid zip archive"),
    "not-a-zip": (_not_a_zip, "ml-1m", "not a valid zip archive"),
    "crc": (_crc_corrupt, "ml-1m", "CRC"),
    "1m-7-rows": (_small_1m, "ml-1m", r"has 7 ratings, not the published 1,000,209"),
    "10m-rows": (_small_10m, "ml-10m", r"has 5 ratings, not the published 10,000,054"),
    "25m-rows": (_small_25m, "ml-25m", r"has 5 ratings, not the published 25,000,095"),
    "missing-file": (_1m_missing_file, "ml-1m", "lacks movies.dat"),
    "no-top-folder": (_1m_wrong_folder, "ml-1m", "no top-level folder ml-1m/"),
    "checksum": (_100k_tampered, "ml-100k", "checksum"),
    "bad-schema": (_latest_small_bad_header, "ml-latest-small", "unexpected header"),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_archive_fails_and_leaves_nothing(case, tmp_path):
    build, name, message = BAD_ARCHIVES[case]
    archive = build(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match=message) as info:
        fetch(name, cache=cache, mirror=str(archive.parent))
    assert "\n" not in str(info.value)
    assert leftovers(cache) == []  # no cache entry, no .part file, no extract folder
    assert not is_cached(name, cache)


def test_bad_archive_over_http_leaves_nothing(tmp_path, http_mirror):
    url, served = http_mirror
    shutil.copy(_small_1m(tmp_path), served / "ml-1m.zip")
    with pytest.raises(FetchError, match="not the published 1,000,209"):
        fetch("ml-1m", cache=tmp_path / "cache", mirror=url)
    assert leftovers(tmp_path / "cache") == []


def test_missing_archive_in_mirror_folder(tmp_path):
    with pytest.raises(FetchError, match=r"mirror has no ml-1m\.zip.*MOVIEREC_MIRROR"):
        fetch("ml-1m", cache=tmp_path / "cache", mirror=str(tmp_path))
    assert leftovers(tmp_path / "cache") == []


def test_unreachable_host_says_offline_in_one_sentence(tmp_path, monkeypatch, closed_port):
    monkeypatch.setenv(config.MIRROR_ENV, f"http://127.0.0.1:{closed_port}")
    with pytest.raises(FetchError) as info:
        fetch("ml-1m", cache=tmp_path / "cache")
    message = str(info.value)
    assert "MOVIEREC_MIRROR" in message and "offline" in message
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message
    assert leftovers(tmp_path / "cache") == []


def test_forced_fetch_of_a_bad_archive_keeps_the_good_copy(tmp_path):
    cache = tmp_path / "cache"
    good = fetch("ml-latest-small", cache=cache, mirror=str(MIRROR))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ml-latest-small.zip").write_bytes(b"garbage" * 100)
    with pytest.raises(FetchError, match="not a valid zip"):
        fetch("ml-latest-small", cache=cache, mirror=str(bad), force=True)
    assert is_cached("ml-latest-small", cache) and (good / "ratings.csv").stat().st_size > 1000
    assert leftovers(cache) == ["ml-latest-small"]


def test_download_cut_short_over_http(tmp_path, cut_short_server):
    with pytest.raises(FetchError, match=r"stopped after 5,000 of 100,000 bytes|broke off") as info:
        fetch("ml-1m", cache=tmp_path / "cache", mirror=cut_short_server)
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path / "cache") == []


def test_concurrent_fetches_share_one_verified_copy(tmp_path):
    """Parallel fetches of one dataset into one cache (as parallel test workers do) all succeed."""
    from concurrent.futures import ThreadPoolExecutor

    cache = tmp_path / "cache"
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: fetch("ml-100k", cache=cache, mirror=str(MIRROR)), range(4)))
    assert all(f == cache / "ml-100k" for f in folders)
    assert is_cached("ml-100k", cache) and leftovers(cache) == ["ml-100k"]

