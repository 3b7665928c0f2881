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
