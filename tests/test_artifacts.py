"""Bundles: round trips, full verification of every file, atomic and careful writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import movierec
from movierec.artifacts import (
    FORMAT_VERSION,
    Bundle,
    is_bundle_dir,
    load_bundle,
    read_manifest,
    save_bundle,
    verify_bundle,
)
from movierec.artifacts import bundle as bundle_mod
from movierec.data import load_ratings
from movierec.errors import BundleError, UnknownUserError
from movierec.models import create

ROUND_TRIP = [("bias", {}), ("pop", {}), ("ease", {}), ("mf", {"epochs": 3, "dim": 8})]


@pytest.fixture(scope="module")
def fitted(small_split):
    """name -> model fitted on small_split.train, each fitted once, when first asked for."""
    params = dict(ROUND_TRIP)

    class Fitted(dict):
        def __missing__(self, name):
            self[name] = create(name, **params[name]).fit(small_split.train)
            return self[name]

    return Fitted()


@pytest.fixture(scope="module")
def bias_bundle(fitted, small_split) -> Bundle:
    return Bundle.from_model(fitted["bias"], small_split.train, metrics={"rmse": 0.95}, info={"split": "small"})


@pytest.fixture
def saved(bias_bundle, tmp_path) -> Path:
    return save_bundle(bias_bundle, tmp_path / "bias")


def one_sentence(exc: BaseException, folder: Path, *fragments: str) -> None:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith("."), msg
    assert str(folder) in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def resign(folder: Path) -> None:
    """Rewrite the manifest's file list to match the folder (a consistent but wrong bundle)."""
    edit_manifest(folder, lambda m: m.__setitem__("files", {
        p.name: {"sha256": sha(p), "bytes": p.stat().st_size}
        for p in folder.iterdir() if p.name != "manifest.json"}))


# -- round trips --------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n, _ in ROUND_TRIP])
def test_round_trip_answers_identically(name, fitted, small_split, tmp_path):
    model = fitted[name]
    train = small_split.train
    bundle = Bundle.from_model(model, train, metrics={"ndcg@10": 0.25})
    loaded = load_bundle(save_bundle(bundle, tmp_path / name))
    again = loaded.model
    assert type(again) is type(model) and again.get_params() == model.get_params()
    assert again.users_ == model.users_ and again.items_ == model.items_
    users = train.users.raw_ids[::7]
    np.testing.assert_array_equal(again.score(users), model.score(users))
    for exclude in (True, False):
        a, b = model.recommend(users, k=15, exclude_seen=exclude), again.recommend(users, k=15, exclude_seen=exclude)
        np.testing.assert_array_equal(a.item_ids, b.item_ids)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.lengths, b.lengths)
    if model.capabilities.predicts_ratings:
        test = small_split.test
        u, i = test.users.raw(test.user_idx), test.items.raw(test.item_idx)
        np.testing.assert_array_equal(again.predict(u, i), model.predict(u, i))
    if model.capabilities.similar_items:
        movies = train.items.raw_ids[:20]
        np.testing.assert_array_equal(again.similar_items(movies, k=5).item_ids, model.similar_items(movies, k=5).item_ids)
    m = loaded.manifest
    assert m["format_version"] == FORMAT_VERSION and m["movierec_version"] == movierec.__version__
    assert m["model_name"] == name == loaded.name and m["metrics"] == {"ndcg@10": 0.25} == loaded.metrics
    assert m["data_fingerprint"] == train.fingerprint()
    assert m["capabilities"] == model.capabilities.names()
    assert set(m["files"]) == {"state.safetensors", "users.npy", "items.npy", "catalog.parquet"}


def test_catalog_round_trip(bias_bundle, saved, small_split):
    cat, original = load_bundle(saved).catalog, small_split.train.catalog
    assert list(cat.titles) == list(original.titles) and cat.label(0) == original.label(0) == "Toy Story (1995)"
    np.testing.assert_array_equal(cat.years, original.years)
    assert cat.genres == original.genres and cat.genre_names == original.genre_names
    np.testing.assert_array_equal(cat.genre_matrix, original.genre_matrix)


def test_catalog_genre_order_kept(fitted, small_split, tmp_path):
    """The genre vocabulary keeps its column order (not re-sorted), so genre_matrix columns mean the same."""
    from movierec.data.dataset import Catalog

    base = small_split.train.catalog
    names = base.genre_names[::-1]
    order = [base.genre_names.index(g) for g in names]
    catalog = Catalog(titles=base.titles.copy(), years=base.years.copy(), genres=[list(g) for g in base.genres],
                      genre_names=names, genre_matrix=base.genre_matrix[:, order])
    loaded = load_bundle(save_bundle(Bundle.from_model(fitted["pop"], catalog=catalog), tmp_path / "b"))
    assert loaded.catalog.genre_names == names and loaded.manifest["data_fingerprint"] is None
    np.testing.assert_array_equal(loaded.catalog.genre_matrix, catalog.genre_matrix)


def test_empty_catalog(fitted, tmp_path):
    loaded = load_bundle(save_bundle(Bundle.from_model(fitted["pop"]), tmp_path / "b"))
    n = len(fitted["pop"].items_)
    assert len(loaded.catalog.titles) == n and loaded.catalog.genre_names == [] and loaded.catalog.years.max() == -1


def test_string_ids_round_trip(tmp_path):
    rows = [(f"user-{u}", f"tt{1000 + i:07d}", 1 + (u * 7 + i) % 5) for u in range(30) for i in range(40) if (u + i) % 3]
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    ds = load_ratings(path)
    assert ds.users.raw_ids.dtype.kind in "OU"
    model = create("bias").fit(ds)
    loaded = load_bundle(save_bundle(Bundle.from_model(model, ds), tmp_path / "b")).model
    assert np.load(tmp_path / "b" / "users.npy", allow_pickle=False).dtype.kind == "U"
    a, b = model.recommend(["user-3", "user-17"], k=5), loaded.recommend(["user-3", "user-17"], k=5)
    assert [list(x) for x in b.item_ids] == [list(x) for x in a.item_ids] and str(b.item_ids[0, 0]).startswith("tt")
    np.testing.assert_array_equal(loaded.predict(["user-1"], ["tt0001001"]), model.predict(["user-1"], ["tt0001001"]))
    with pytest.raises(UnknownUserError):
        loaded.recommend(["nobody"])


def test_from_model_refuses_other_movies(fitted, ml100k):
    from movierec.errors import ConfigError

    other = ml100k.subset(ml100k.user_idx < 5)
    other = type(other)(other.name, other.users, type(other.items)(other.items.raw_ids[:-1]), other.user_idx[:0],
                        other.item_idx[:0], other.rating[:0], other.timestamp[:0])
    with pytest.raises(ConfigError, match=r"^The dataset's movies are not the movies the model was fitted on\.$"):
        Bundle.from_model(fitted["bias"], other)


# -- verification -------------------------------------------------------------------
def flip_byte(folder: Path) -> None:
    path = folder / "state.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(folder: Path) -> None:
    path = folder / "items.npy"
    path.write_bytes(path.read_bytes()[:-8])


def drop_files_and_tamper(folder: Path) -> None:
    # the old hole: without a file list, verification was skipped and a tampered state loaded
    flip_byte(folder)
    edit_manifest(folder, lambda m: m.pop("files"))


def newer_minor(m: dict) -> None:
    major, minor = movierec.__version__.split(".")[:2]
    m["movierec_version"] = f"{major}.{int(minor) + 1}.0"


def unlisted_required(folder: Path) -> None:
    (folder / "catalog.parquet").unlink()
    edit_manifest(folder, lambda m: m["files"].pop("catalog.parquet"))


def traversal(folder: Path) -> None:
    (folder.parent / "outside.txt").write_text("x")
    edit_manifest(folder, lambda m: m["files"].__setitem__("../outside.txt", {"sha256": sha(folder.parent / "outside.txt"), "bytes": 1}))


def symlinked(folder: Path) -> None:
    # the same bytes (checksum intact), but through a link that could point anywhere
    target = folder.parent / "users-elsewhere.npy"
    target.write_bytes((folder / "users.npy").read_bytes())
    (folder / "users.npy").unlink()
    (folder / "users.npy").symlink_to(target)


def rewrite_ids(folder: Path, change) -> None:
    np.save(folder / "items.npy", change(np.load(folder / "items.npy")))
    resign(folder)


CORRUPTIONS = {
    "symlinked file": (symlinked, ["users.npy is not a regular file"]),
    "boolean size": (lambda f: edit_manifest(f, lambda m: m["files"]["users.npy"].__setitem__("bytes", True)),
                     ["malformed entry for users.npy"]),
    "malformed entry": (lambda f: edit_manifest(f, lambda m: m["files"].__setitem__("users.npy", {"sha256": 5, "bytes": 1})),
                        ["malformed entry for users.npy"]),
    "backslash name": (lambda f: edit_manifest(f, lambda m: m["files"].__setitem__("a\\b", {"sha256": "0", "bytes": 1})),
                       ["invalid file name"]),
    "class without module": (lambda f: edit_manifest(f, lambda m: m.__setitem__("model_class", "movierec.models.bias.BiasOnly")),
                             ["names no valid model class"]),
    "flipped byte": (flip_byte, ["state.safetensors", "checksum"]),
    "truncated": (truncate, ["items.npy", "truncated"]),
    "missing file": (lambda f: (f / "users.npy").unlink(), ["users.npy is missing"]),
    "extra file": (lambda f: (f / "notes.txt").write_text("hi"), ["does not list: notes.txt"]),
    "extra folder": (lambda f: (f / "sub").mkdir(), ["does not list: sub"]),
    "files deleted": (drop_files_and_tamper, ["no file list"]),
    "files empty": (lambda f: edit_manifest(f, lambda m: m.__setitem__("files", {})), ["empty"]),
    "files not a dict": (lambda f: edit_manifest(f, lambda m: m.__setitem__("files", ["state.safetensors"])), ["malformed"]),
    "required not listed": (unlisted_required, ["does not list catalog.parquet"]),
    "path traversal": (traversal, ["invalid file name"]),
    "unknown format": (lambda f: edit_manifest(f, lambda m: m.__setitem__("format_version", 99)), ["format version 99"]),
    "no format": (lambda f: edit_manifest(f, lambda m: m.pop("format_version")), ["no format_version"]),
    "newer movierec": (lambda f: edit_manifest(f, newer_minor), ["newer", "upgrade movierec to read it."]),
    "older movierec": (lambda f: edit_manifest(f, lambda m: m.__setitem__("movierec_version", "0.0.9")), ["0.0.9"]),
    "no movierec version": (lambda f: edit_manifest(f, lambda m: m.pop("movierec_version")), ["which movierec"]),
    "class outside": (lambda f: edit_manifest(f, lambda m: m.__setitem__("model_class", "os:system")), ["outside movierec"]),
    "unknown class": (lambda f: edit_manifest(f, lambda m: m.__setitem__("model_class", "movierec.models.bias:Nope")),
                      ["unknown model class"]),
    "not a model class": (lambda f: edit_manifest(f, lambda m: m.__setitem__("model_class", "movierec.data.idmap:IdMap")),
                          ["not a movierec model class"]),
    "corrupt json": (lambda f: (f / "manifest.json").write_text('{"format_version": 2, '), ["not valid JSON"]),
    "json list": (lambda f: (f / "manifest.json").write_text("[2]"), ["not a JSON object"]),
    "no manifest": (lambda f: (f / "manifest.json").unlink(), ["no manifest.json"]),
}


@pytest.mark.parametrize("change, fragment", [
    (lambda ids: ids.reshape(1, -1), "items.npy does not hold a list of IDs"),
    (lambda ids: ids[::-1].copy(), "items.npy holds repeated or unsorted IDs"),
])
def test_loading_refuses_bad_id_lists(change, fragment, saved):
    """Intact checksums (re-signed) but ID lists a bundle never writes."""
    rewrite_ids(saved, change)
    with pytest.raises(BundleError) as loaded:
        load_bundle(saved)
    one_sentence(loaded.value, saved, fragment)


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_verification_refuses(case, saved):
    corrupt, fragments = CORRUPTIONS[case]
    corrupt(saved)
    with pytest.raises(BundleError) as verified:
        verify_bundle(saved)
    one_sentence(verified.value, saved, *fragments)
    with pytest.raises(BundleError) as loaded:
        load_bundle(saved)
    assert str(loaded.value) == str(verified.value)


def test_patch_release_and_intact_bundle_accepted(saved):
    assert verify_bundle(saved)["model_name"] == "bias" and is_bundle_dir(saved)
    major, minor = movierec.__version__.split(".")[:2]
    edit_manifest(saved, lambda m: m.__setitem__("movierec_version", f"{major}.{minor}.99"))
    assert read_manifest(saved)["movierec_version"].endswith(".99")
    assert load_bundle(saved).model.name == "bias"


def test_no_folder(tmp_path):
    with pytest.raises(BundleError) as exc:
        load_bundle(tmp_path / "nowhere")
    one_sentence(exc.value, tmp_path / "nowhere", "No model bundle folder")


def test_state_not_matching_id_maps_refused(saved):
    np.save(saved / "users.npy", np.arange(1, 11), allow_pickle=False)  # fewer users than the state
    resign(saved)
    verify_bundle(saved)  # consistent files: only loading can tell
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, "does not fit")


@pytest.mark.parametrize("name,content", [("state.safetensors", b"not safetensors"), ("items.npy", b"garbage"),
                                          ("catalog.parquet", b"PAR1 nope")])
def test_unreadable_files_refused(saved, name, content):
    (saved / name).write_bytes(content)
    resign(saved)
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, name)


def test_pickled_ids_refused(saved):
    np.save(saved / "items.npy", np.array([object()] * 3, dtype=object), allow_pickle=True)
    resign(saved)
    with pytest.raises(BundleError, match="items.npy cannot be read"):
        load_bundle(saved)


# -- writing ------------------------------------------------------------------------
def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_crash_mid_write_keeps_old_bundle(bias_bundle, saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle_mod, "_write_catalog", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_bundle(bias_bundle, saved, overwrite=True)
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert leftovers(saved.parent) == []
    assert load_bundle(saved).model.name == "bias"


def test_unserialisable_state_keeps_old_bundle(fitted, small_split, saved):
    from movierec.models.base import ModelState

    model = create("pop").fit(small_split.train)
    model.state_dict = lambda: ModelState(arrays={"model.bad": np.array(["a", "b"], dtype=object)})
    with pytest.raises(BundleError, match="not numeric"):
        save_bundle(Bundle.from_model(model, small_split.train), saved, overwrite=True)
    assert load_bundle(saved).model.name == "bias" and leftovers(saved.parent) == []


def test_overwrite_replaces_a_bundle_only(fitted, small_split, saved, tmp_path, monkeypatch):
    pop = Bundle.from_model(fitted["pop"], small_split.train)
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(pop, saved)
    save_bundle(pop, saved, overwrite=True)
    assert load_bundle(saved).model.name == "pop" and leftovers(tmp_path) == []

    plain = tmp_path / "plain.txt"
    plain.write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(BundleError, match="is a file"):
            save_bundle(pop, plain, overwrite=overwrite)
    assert plain.read_text() == "keep me"

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(BundleError, match="not a movierec bundle"):
        save_bundle(pop, folder, overwrite=True)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_bundle(save_bundle(pop, empty)).model.name == "pop"

    work = tmp_path / "work"
    save_bundle(pop, work)
    monkeypatch.chdir(work)
    for target in (".", "..", str(work)):
        with pytest.raises(BundleError, match="working folder"):
            save_bundle(pop, target, overwrite=True)
    assert verify_bundle(work)["model_name"] == "pop"


# -- what the files hold (found by mutation testing) ------------------------------------
def test_manifest_records_the_model_not_a_stale_manifest(fitted, small_split, tmp_path):
    """save_bundle writes what the model is, keeps extra keys, and the saved manifest is what it wrote."""
    model = create("bias", reg_user=2.5, reg_item=7.0, n_iter=4).fit(small_split.train)
    bundle = Bundle.from_model(model, small_split.train, metrics={"rmse": np.float32(0.5)},
                               info={"split": ("u1", np.int64(5))})
    assert bundle.manifest["params"] == {"reg_user": 2.5, "reg_item": 7.0, "n_iter": 4}
    assert bundle.manifest["info"] == {"split": ["u1", 5]}
    bundle.manifest.update(model_name="stale", model_class="movierec.models.bias:Nope", params={"n_iter": 99},
                           capabilities=[], n_users=1, n_items=2, extra=np.int64(3), note=None)
    bundle.manifest["metrics"] = {"pair": (1, 2)}
    bundle.manifest["info"] = {"split": ("u1", np.int64(5))}
    path = save_bundle(bundle, tmp_path / "nested" / "deeper" / "b")
    assert bundle.path == path
    on_disk = read_manifest(path)
    assert bundle.manifest == on_disk  # the in-memory manifest is the JSON one, not numpy or tuples
    assert on_disk["model_name"] == "bias" and on_disk["model_class"] == "movierec.models.bias:BiasOnly"
    assert on_disk["params"] == model.get_params() == {"reg_user": 2.5, "reg_item": 7.0, "n_iter": 4}
    assert on_disk["capabilities"] == model.capabilities.names()
    assert (on_disk["n_users"], on_disk["n_items"]) == (len(model.users_), len(model.items_))
    assert on_disk["extra"] == 3 and "note" not in on_disk
    assert on_disk["metrics"] == {"pair": [1, 2]} and on_disk["info"] == {"split": ["u1", 5]}
    assert on_disk["data_fingerprint"] == small_split.train.fingerprint()
    text = (path / "manifest.json").read_text()
    assert text == json.dumps(on_disk, indent=2)  # readable and diff-friendly, one key per line
    loaded = load_bundle(path)
    assert loaded.path == path and loaded.model.get_params() == model.get_params()
    users = small_split.train.users.raw_ids[:9]
    np.testing.assert_array_equal(loaded.model.score(users), model.score(users))


def test_created_is_utc(saved, monkeypatch, bias_bundle, tmp_path):
    import re
    import time
    from datetime import datetime, timezone

    monkeypatch.setenv("TZ", "XYZ-05:45")  # local time 5h45 ahead of UTC
    time.tzset()
    try:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        created = read_manifest(save_bundle(bias_bundle, tmp_path / "t"))["created"]
        after = datetime.now(timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
    stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after


def test_json_values_from_numpy():
    values = {"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "a": np.arange(3), "t": (1, "x"),
              "s": frozenset({4}), "p": Path("a") / "b"}
    out = bundle_mod._jsonable(values)
    assert out == {"i": 3, "f": 0.5, "b": True, "a": [0, 1, 2], "t": [1, "x"], "s": [4], "p": str(Path("a") / "b")}
    assert [type(out[k]) for k in "ifb"] == [int, float, bool]
    with pytest.raises(TypeError, match="^object is not JSON serialisable$"):
        bundle_mod._jsonable({"x": object()})


def test_major_minor_pads_short_versions():
    from packaging.version import Version

    assert bundle_mod._major_minor(Version("2")) == (2, 0)
    assert bundle_mod._major_minor(Version("1.4")) == (1, 4)
    assert bundle_mod._major_minor(Version("0.3.7")) == (0, 3)


def test_catalog_parquet_is_a_plain_table(fitted, small_split, tmp_path):
    """Other tools can read catalog.parquet: item IDs keep their type, years are int32, no index column."""
    from movierec.data.dataset import Catalog
    import pandas as pd

    base = small_split.train.catalog
    titles = base.titles.copy()
    titles[1] = None  # unknown titles are written as ""
    catalog = Catalog(titles=titles, years=base.years.astype(np.int64), genres=base.genres,
                      genre_names=base.genre_names, genre_matrix=base.genre_matrix)
    path = save_bundle(Bundle.from_model(fitted["pop"], catalog=catalog), tmp_path / "b")
    frame = pd.read_parquet(path / "catalog.parquet")
    assert list(frame.columns) == ["item_id", "title", "year", "genres"]
    assert frame["item_id"].dtype.kind in "iu" and frame["year"].dtype == np.int32
    np.testing.assert_array_equal(frame["item_id"].to_numpy(), fitted["pop"].items_.raw_ids)
    assert frame["title"].iloc[1] == "" and frame["title"].iloc[0] == base.titles[0]
    import pyarrow.parquet as pq

    assert pq.read_schema(path / "catalog.parquet").names == ["item_id", "title", "year", "genres"]
    loaded = load_bundle(path).catalog
    assert loaded.titles.dtype == object and loaded.titles[1] == "" and loaded.years.dtype == np.int32
    assert loaded.genre_matrix.dtype == base.genre_matrix.dtype == np.uint8


def rewrite_catalog(folder: Path, change) -> None:
    import pandas as pd

    frame = pd.read_parquet(folder / "catalog.parquet")
    change(frame).to_parquet(folder / "catalog.parquet", index=False)
    resign(folder)


def _drop_and_pad(column):
    return lambda f: f.drop(columns=[column]).assign(extra=1)


@pytest.mark.parametrize("change, fragment", [
    *[(_drop_and_pad(c), "does not describe its") for c in ("item_id", "title", "year", "genres")],
    (lambda f: f.iloc[:-1], "does not describe its"),
    (lambda f: f.iloc[::-1], "is not in the order of items.npy"),
])
def test_loading_refuses_a_catalog_that_does_not_fit(change, fragment, saved):
    rewrite_catalog(saved, change)
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, "catalog.parquet", fragment)


def test_foreign_catalog_values_read_safely(saved):
    """Nulls a writer might leave (no title, no genre list) and int64 years load as empty / int32."""
    def change(frame):
        frame["title"] = frame["title"].astype(object)
        frame.loc[0, "title"] = None
        frame["genres"] = [None] + list(frame["genres"].iloc[1:])
        frame["year"] = frame["year"].astype(np.int64)
        return frame

    rewrite_catalog(saved, change)
    cat = load_bundle(saved).catalog
    assert cat.titles[0] == "" and cat.genres[0] == [] and cat.genre_matrix[0].sum() == 0
    assert cat.years.dtype == np.int32


def test_loading_refuses_a_genre_the_manifest_lacks(saved):
    edit_manifest(saved, lambda m: m["catalog_genres"].remove("Action"))
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, "names a genre 'Action' the manifest lacks")


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m.__setitem__("params", [1]), "has malformed model parameters"),
    (lambda m: m.__setitem__("params", {"bogus": 1}), "has parameters BiasOnly does not accept ("),
    (lambda m: m.__setitem__("state_meta", [1]), "has malformed state meta"),
    (lambda m: m.__setitem__("movierec_version", "not-a-version"), "names an invalid movierec version 'not-a-version'"),
])
def test_loading_refuses_a_malformed_manifest(change, fragment, saved):
    edit_manifest(saved, change)
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, fragment)


def test_missing_state_array_named_plainly(saved):
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(saved / "state.safetensors"))
    del arrays["seen.indptr"]
    save_file(arrays, str(saved / "state.safetensors"))
    resign(saved)
    with pytest.raises(BundleError) as exc:
        load_bundle(saved)
    one_sentence(exc.value, saved, "does not fit its model or ID maps (seen.indptr).")


def test_loaded_id_maps_name_users_and_movies(fitted, saved):
    from movierec.errors import UnknownItemError

    model, loaded = fitted["bias"], load_bundle(saved).model
    for m in (model, loaded):
        with pytest.raises(UnknownUserError, match=r"^Unknown user ID: 999999\.$"):
            m.recommend([999999])
        with pytest.raises(UnknownItemError, match=r"^Unknown movie ID: 999999\.$"):
            m.predict([1], [999999])
    assert loaded.users_.kind == "user" and loaded.items_.kind == "movie"


@pytest.mark.parametrize("names, fragment", [
    ({""}, "invalid file name ''"),
    ({".."}, "invalid file name '..'"),
    ({"."}, "invalid file name '.'"),
    ({"manifest.json"}, "invalid file name 'manifest.json'"),
])
def test_manifest_file_names_refused(names, fragment, saved):
    edit_manifest(saved, lambda m: m["files"].update({n: {"sha256": "0" * 64, "bytes": 1} for n in names}))
    with pytest.raises(BundleError) as exc:
        verify_bundle(saved)
    one_sentence(exc.value, saved, fragment)


@pytest.mark.parametrize("corrupt, fragment", [
    (lambda f: edit_manifest(f, lambda m: [m["files"].pop(n) for n in ("catalog.parquet", "items.npy")]),
     "does not list items.npy, catalog.parquet."),
    (lambda f: [(f / n).write_text("x") for n in ("b.txt", "a.txt")], "does not list: a.txt, b.txt."),
    (lambda f: [(f / n).unlink() for n in ("users.npy", "items.npy")], "incomplete: items.npy, users.npy are missing."),
    (lambda f: (f / "users.npy").unlink(), "incomplete: users.npy is missing."),
])
def test_several_problems_listed_in_one_sentence(corrupt, fragment, saved):
    corrupt(saved)
    with pytest.raises(BundleError) as exc:
        verify_bundle(saved)
    one_sentence(exc.value, saved, fragment)


@pytest.mark.parametrize("text, expected", [
    ('{"format_version": 2, "model_class": "m:C"}', True),
    ("{not json", False),
    ('{"format_version": 2}', False),
    ('{"model_class": "m:C"}', False),
    ('["format_version", "model_class"]', False),
])
def test_is_bundle_dir(text, expected, tmp_path):
    (tmp_path / "manifest.json").write_text(text)
    assert is_bundle_dir(tmp_path) is expected
    assert not is_bundle_dir(tmp_path / "nowhere")


def test_catalog_of_the_wrong_size_refused_before_writing(fitted, tmp_path):
    from movierec.data.dataset import Catalog
    from movierec.errors import ConfigError

    n = len(fitted["pop"].items_)
    with pytest.raises(ConfigError) as exc:
        Bundle.from_model(fitted["pop"], catalog=Catalog.empty(3))
    assert str(exc.value) == f"The catalog describes 3 movies; the model knows {n}."
    with pytest.raises(ConfigError, match="^The catalog describes 3 movies"):
        save_bundle(Bundle(model=fitted["pop"], catalog=Catalog.empty(3)), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_state_named(small_split, tmp_path):
    from movierec.models.base import ModelState

    model = create("pop").fit(small_split.train)
    model.state_dict = lambda: ModelState(arrays={5: np.zeros(3)})  # safetensors wants string keys
    with pytest.raises(BundleError, match=r"^Cannot save the model's state: .+\.$"):
        save_bundle(Bundle.from_model(model, small_split.train), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_partial_bundle_is_a_hidden_sibling(bias_bundle, tmp_path, monkeypatch):
    """The files are written next to the target (same file system: the rename is atomic), under a hidden name."""
    seen = []
    real = bundle_mod._write_catalog

    def spy(catalog, items, path):
        seen.append(Path(path).parent)
        real(catalog, items, path)

    monkeypatch.setattr(bundle_mod, "_write_catalog", spy)
    target = tmp_path / "models" / "bias"
    save_bundle(bias_bundle, target)
    assert seen[0].parent == target.parent and seen[0].name.startswith(".bias.tmp-")
    assert not seen[0].exists() and [p.name for p in target.parent.iterdir()] == ["bias"]


def test_rename_onto_an_empty_folder_falls_back(bias_bundle, tmp_path, monkeypatch):
    """Where renaming over an empty folder fails, the folder is removed and the rename retried."""
    target = tmp_path / "empty"
    target.mkdir()
    real = bundle_mod.os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst).is_dir() and len(calls) == 1:
            raise OSError("cannot replace a folder here")
        real(src, dst)

    monkeypatch.setattr(bundle_mod.os, "rename", rename)
    save_bundle(bias_bundle, target)
    monkeypatch.undo()
    assert len(calls) == 2 and calls[0] == calls[1] and calls[1][1] == "empty"
    assert load_bundle(target).model.name == "bias" and leftovers(tmp_path) == []


def test_failed_rename_restores_the_old_bundle(bias_bundle, fitted, small_split, saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    real = bundle_mod.os.rename

    def rename(src, dst):
        if ".tmp-" in Path(src).name:
            raise OSError("rename failed")
        real(src, dst)

    monkeypatch.setattr(bundle_mod.os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        save_bundle(Bundle.from_model(fitted["pop"], small_split.train), saved, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert leftovers(saved.parent) == [] and load_bundle(saved).model.name == "bias"


def test_catalog_genres_sorted_when_the_manifest_names_none(saved, small_split):
    """A manifest without catalog_genres (hand-written bundles) gets the catalog's genres, sorted."""
    edit_manifest(saved, lambda m: m.pop("catalog_genres"))
    cat = load_bundle(saved).catalog
    genres = sorted({g for gl in small_split.train.catalog.genres for g in gl})
    assert cat.genre_names == genres and cat.genres == small_split.train.catalog.genres
    col = {g: j for j, g in enumerate(genres)}
    assert all(cat.genre_matrix[i, col[g]] == 1 for i, gl in enumerate(cat.genres) for g in gl)
    assert cat.genre_matrix.sum() == sum(len(gl) for gl in cat.genres)
