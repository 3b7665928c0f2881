"""ModelRegistry: numbered versions, a current pointer moved atomically, verification."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from movierec.artifacts import Bundle, ModelRegistry, load_bundle, verify_bundle
from movierec.artifacts import registry as registry_mod
from movierec.errors import BundleError, RegistryError
from movierec.models import create


@pytest.fixture(scope="module")
def bias_model(small_split):
    return create("bias").fit(small_split.train)


@pytest.fixture
def bundle(bias_model, small_split) -> Bundle:
    return Bundle.from_model(bias_model, small_split.train, metrics={"rmse": 0.95})


@pytest.fixture
def reg(tmp_path, bundle) -> ModelRegistry:
    """A registry holding versions 1, 2, 3 of "bias"; 1 is current."""
    registry = ModelRegistry(tmp_path / "reg")
    for rmse in (0.95, 0.94, 0.93):
        bundle.manifest["metrics"] = {"rmse": rmse}
        registry.add(bundle)
    return registry


def flip_byte(folder: Path) -> None:
    path = folder / "state.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def pointer(reg: ModelRegistry, name: str = "bias") -> dict:
    return json.loads(reg.pointer_path(name).read_text())


def test_add_list_current(reg, bundle, small_split):
    assert reg.names() == ["bias"]
    versions = reg.versions("bias")
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert [v.current for v in versions] == [True, False, False]  # only the first add promotes by default
    assert [v.metrics["rmse"] for v in versions] == [0.95, 0.94, 0.93]
    for v in versions:
        assert v.manifest["version"] == v.version and v.manifest["registry_name"] == "bias"
        assert v.path == reg.root / "bias" / v.version and v.created and v.model_name == "bias"
    assert reg.current("bias").version == "1" and reg.get("bias").version == "1"
    assert pointer(reg) == {"version": "1", "history": [], "updated": pointer(reg)["updated"]}
    loaded = reg.load("bias", "2")
    assert loaded.version == "2" and loaded.metrics == {"rmse": 0.94}
    assert bundle.version == "3" and bundle.path == reg.root / "bias" / "3"  # the caller's bundle says where it went

    pop = create("pop").fit(small_split.train)
    v = reg.add(Bundle.from_model(pop, small_split.train), name="popular", promote=False)
    assert (v.version, v.current) == ("1", False) and reg.current("popular") is None
    assert reg.names() == ["bias", "popular"]
    assert reg.add(Bundle.from_model(pop, small_split.train), name="popular", promote=True).current


def test_unknown_names_and_versions(reg, tmp_path):
    with pytest.raises(RegistryError, match=r"no model named 'nope'; it holds bias\.$"):
        reg.get("nope")
    with pytest.raises(RegistryError, match=r"no version 7; it has: 1, 2, 3\.$"):
        reg.get("bias", "7")
    with pytest.raises(RegistryError, match="it is empty"):
        ModelRegistry(tmp_path / "empty").load("bias")
    with pytest.raises(RegistryError, match="not a valid registry name"):
        reg.get("../bias")
    with pytest.raises(RegistryError):
        reg.promote("bias", "9")


def test_promote_and_rollback(reg):
    assert reg.promote("bias", "3").current
    assert reg.current("bias").version == "3" and pointer(reg)["history"] == ["1"]
    reg.promote("bias", "2")
    assert pointer(reg)["history"] == ["1", "3"]
    assert reg.rollback("bias").version == "3" and reg.current("bias").version == "3"
    assert reg.rollback("bias").version == "1" and pointer(reg) == {**pointer(reg), "version": "1", "history": []}
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("bias")
    assert [v.current for v in reg.versions("bias")] == [True, False, False]


def test_promote_refuses_a_corrupt_version(reg):
    flip_byte(reg.root / "bias" / "2")
    before = reg.pointer_path("bias").read_bytes()
    with pytest.raises(BundleError, match="checksum"):
        reg.promote("bias", "2")
    assert reg.pointer_path("bias").read_bytes() == before


def test_rollback_refuses_a_corrupt_version(reg):
    reg.promote("bias", "3")
    flip_byte(reg.root / "bias" / "1")
    with pytest.raises(BundleError, match="checksum"):
        reg.rollback("bias")
    assert reg.current("bias").version == "3"


def test_verify_finds_the_tampered_version(reg):
    assert [err for _, err in reg.verify()] == [None, None, None]
    (reg.root / "bias" / "2" / "extra.bin").write_bytes(b"\0")
    results = reg.verify("bias")
    assert [(v.version, err is None) for v, err in results] == [("1", True), ("2", False), ("3", True)]
    assert "extra.bin" in results[1][1] and str(reg.root / "bias" / "2") in results[1][1]
    assert [v.version for v, _ in reg.verify("bias", "2")] == ["2"]
    with pytest.raises(BundleError):
        reg.load("bias", "2")


def test_pointer_never_half_written(reg, monkeypatch):
    before = reg.pointer_path("bias").read_bytes()

    def partial_dump(obj, fh, **kwargs):
        fh.write('{"version": "3", "hist')  # the process dies mid-write
        raise OSError("no space left on device")

    monkeypatch.setattr(registry_mod.json, "dump", partial_dump)
    with pytest.raises(OSError, match="no space"):
        reg.promote("bias", "3")
    monkeypatch.undo()
    assert reg.pointer_path("bias").read_bytes() == before
    assert sorted(p.name for p in (reg.root / "bias").iterdir()) == [".lock", "1", "2", "3", "CURRENT.json"]


def test_pointer_is_replaced_by_rename(reg, monkeypatch):
    before = reg.pointer_path("bias").read_bytes()

    def no_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(registry_mod.os, "replace", no_replace)
    with pytest.raises(OSError, match="rename failed"):
        reg.promote("bias", "2")
    monkeypatch.undo()
    assert reg.pointer_path("bias").read_bytes() == before and reg.current("bias").version == "1"
    assert not [p for p in (reg.root / "bias").iterdir() if p.name.endswith(".tmp")]


def test_concurrent_adds_get_distinct_versions(tmp_path, bundle):
    reg = ModelRegistry(tmp_path / "reg")
    n = 6
    barrier = threading.Barrier(n)
    got, errors = [], []

    def add():
        try:
            barrier.wait()
            got.append(reg.add(bundle).version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got, key=int) == [str(i) for i in range(1, n + 1)]
    for v in reg.versions("bias"):
        assert verify_bundle(v.path)["version"] == v.version
    assert sum(v.current for v in reg.versions("bias")) == 1
    assert load_bundle(reg.get("bias").path).model.name == "bias"


def test_version_numbers_never_reused(reg):
    import shutil

    reg.promote("bias", "3")
    shutil.rmtree(reg.root / "bias" / "3")  # someone deletes the newest version by hand
    assert reg.current("bias") is None
    bundle = reg.load("bias", "2")
    assert reg.add(bundle).version == "4"


def test_a_file_where_the_registry_or_its_name_folder_should_be_is_refused_before_any_work(tmp_path):
    from movierec.artifacts import ModelRegistry
    from movierec.errors import RegistryError

    afile = tmp_path / "afile"
    afile.write_text("not a registry")
    with pytest.raises(RegistryError, match="is a file, not a model registry folder"):
        ModelRegistry(afile).check_writable("ease")
    root = tmp_path / "reg"
    root.mkdir()
    (root / "ease").write_text("in the way")
    with pytest.raises(RegistryError, match="cannot keep versions of 'ease'"):
        ModelRegistry(root).check_writable("ease")
    ModelRegistry(tmp_path / "new").check_writable("ease")  # a registry that does not exist yet is fine


# -- found by mutation testing ------------------------------------------------------------
def test_repr_names_the_root(tmp_path):
    assert repr(ModelRegistry(tmp_path / "reg")) == f"ModelRegistry({str(tmp_path / 'reg')!r})"


def test_versions_name_and_current_flag(reg):
    assert [(v.name, v.current) for v in reg.versions("bias")] == [("bias", True), ("bias", False), ("bias", False)]
    current = reg.current("bias")
    assert (current.name, current.version, current.current) == ("bias", "1", True)
    assert reg.promote("bias", "2").version == "2" and reg.rollback("bias").version == "1"


def test_versions_sorted_as_numbers_and_only_bundles(reg):
    import shutil

    shutil.copytree(reg.root / "bias" / "3", reg.root / "bias" / "10")
    (reg.root / "bias" / "11").mkdir()  # reserved by an add still writing: not a version yet
    (reg.root / "bias" / "notes").mkdir()
    (reg.root / "bias" / "notes" / "manifest.json").write_text("{}")
    assert [v.version for v in reg.versions("bias")] == ["1", "2", "3", "10"]


def test_names_lists_only_folders_with_versions(reg):
    (reg.root / "README").write_text("models live here")
    (reg.root / "empty").mkdir()
    (reg.root / ".hidden" / "1").mkdir(parents=True)
    (reg.root / ".hidden" / "1" / "manifest.json").write_text("{}")
    assert reg.names() == ["bias"]


def test_new_version_is_higher_than_every_stored_one(reg):
    import shutil

    shutil.rmtree(reg.root / "bias" / "2")  # a version in the middle deleted by hand
    assert reg.add(reg.load("bias", "3")).version == "4"


@pytest.mark.parametrize("payload", [["1"], {"version": "1", "history": "2"}, {"version": 3, "history": []}, "x",
                                     {"version": "2", "history": [1]}, {"version": "2", "history": [["1"]]}])
def test_corrupt_pointer_refused(reg, payload):
    reg.pointer_path("bias").write_text(json.dumps(payload))
    with pytest.raises(RegistryError) as exc:
        reg.current("bias")
    assert str(exc.value) == f"The pointer {reg.pointer_path('bias')} is corrupt; promote a version to rewrite it."


def test_read_pointer_is_the_pointer_as_stored(reg, tmp_path):
    """`read_pointer`: the one reader of CURRENT.json (the service reads it too)."""
    from movierec.artifacts.registry import Pointer

    assert reg.read_pointer("bias") == Pointer("1", ())
    reg.promote("bias", "3")
    reg.promote("bias", "2")
    assert reg.read_pointer("bias") == Pointer("2", ("1", "3")) == Pointer(pointer(reg)["version"],
                                                                          tuple(pointer(reg)["history"]))
    assert ModelRegistry(tmp_path / "empty").read_pointer("bias") == Pointer(None, ())  # no pointer yet
    reg.pointer_path("bias").write_text("{not json")
    with pytest.raises(RegistryError, match="is corrupt"):
        reg.read_pointer("bias")
    with pytest.raises(RegistryError, match="not a valid registry name"):
        reg.read_pointer("../bias")


def test_pointer_without_history(reg):
    reg.pointer_path("bias").write_text(json.dumps({"version": "2"}))
    assert reg.current("bias").version == "2"
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("bias")


def test_pointer_file_is_readable_json_with_utc_time(reg, monkeypatch):
    import re
    import time
    from datetime import datetime, timezone

    monkeypatch.setenv("TZ", "XYZ-05:45")  # local time 5h45 ahead of UTC
    time.tzset()
    seen = []
    real = registry_mod.os.replace

    def spy(src, dst):
        seen.append(Path(src))
        real(src, dst)

    monkeypatch.setattr(registry_mod.os, "replace", spy)
    try:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        reg.promote("bias", "2")
        after = datetime.now(timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    text = reg.pointer_path("bias").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["updated"]), data["updated"]
    stamp = datetime.strptime(data["updated"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after
    # written as a hidden temp file beside the pointer (same file system: the rename is atomic)
    assert seen[0].parent == reg.pointer_path("bias").parent
    assert seen[0].name.startswith(".CURRENT.json.") and seen[0].name.endswith(".tmp")


def test_failed_add_gives_its_number_back(reg, bundle, monkeypatch):
    from movierec.artifacts import bundle as bundle_mod

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle_mod, "_write_catalog", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        reg.add(bundle)
    monkeypatch.undo()
    assert sorted(p.name for p in (reg.root / "bias").iterdir()) == [".lock", "1", "2", "3", "CURRENT.json"]


def test_failed_add_keeps_a_bundle_already_in_place(reg, bundle, monkeypatch):
    """When only the final folder sync fails, the complete bundle stays (it verifies)."""
    from movierec.artifacts import bundle as bundle_mod

    real = bundle_mod._fsync_dir
    folder = reg.root / "bias"

    def fsync_dir(path):
        if Path(path) == folder:
            raise OSError("sync failed")
        real(path)

    monkeypatch.setattr(bundle_mod, "_fsync_dir", fsync_dir)
    with pytest.raises(OSError, match="sync failed"):
        reg.add(bundle)
    monkeypatch.undo()
    assert verify_bundle(folder / "4")["version"] == "4"


def test_add_refuses_a_file_where_the_name_folder_should_be(reg, bundle):
    (reg.root / "other").write_text("in the way")
    with pytest.raises(RegistryError, match="cannot keep versions of 'other'"):
        reg.add(bundle, name="other")


def test_messages_list_what_exists(reg, bundle, tmp_path):
    bundle.manifest.pop("version", None)
    reg.add(bundle, name="zeta", promote=False)
    with pytest.raises(RegistryError) as exc:
        reg.get("nope")
    assert str(exc.value) == f"The registry {reg.root} has no model named 'nope'; it holds bias, zeta."
    with pytest.raises(RegistryError) as exc:
        ModelRegistry(tmp_path / "empty").get("bias")
    assert str(exc.value).endswith("has no model named 'bias'; it is empty.")
    with pytest.raises(RegistryError) as exc:
        reg.get("zeta")
    assert str(exc.value) == "Model 'zeta' has no current version; promote one of: 1."
    for call in (reg.rollback, reg.verify):
        with pytest.raises(RegistryError, match=r"no model named 'nope'; it holds bias, zeta\.$"):
            call("nope")
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("zeta")
    with pytest.raises(RegistryError) as exc:
        reg.verify(version="1")
    assert str(exc.value) == "Name a model to verify one of its versions."
