"""Bundle folders and registry versions get the user's umask (0o777 / 0o666 less it), as
any new folder and file would, never the drwx------ of a temporary folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from movierec.artifacts import Bundle, ModelRegistry, save_bundle
from movierec.models import create


@pytest.fixture(scope="module")
def bias_bundle(small_split) -> Bundle:
    return Bundle.from_model(create("bias").fit(small_split.train), small_split.train)


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    """Run the test under this umask, then restore the old one."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_umask_modes(folder: Path, umask: int) -> None:
    assert mode(folder) == 0o777 & ~umask, oct(mode(folder))
    files = list(folder.iterdir())
    assert files and all(p.is_file() for p in files)
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}


def test_save_bundle_follows_the_umask(bias_bundle, tmp_path, umask):
    path = save_bundle(bias_bundle, tmp_path / "models" / "bias")
    assert_umask_modes(path, umask)
    assert mode(path.parent) == 0o777 & ~umask


def test_overwritten_bundle_follows_the_umask(bias_bundle, tmp_path, umask):
    path = tmp_path / "bias"
    save_bundle(bias_bundle, path)
    os.chmod(path, 0o700)
    save_bundle(bias_bundle, path, overwrite=True)
    assert_umask_modes(path, umask)


def test_registry_versions_follow_the_umask(bias_bundle, tmp_path, umask):
    reg = ModelRegistry(tmp_path / "reg")
    version = reg.add(bias_bundle)
    assert_umask_modes(version.path, umask)
    assert mode(tmp_path / "reg") == mode(version.path.parent) == 0o777 & ~umask
    assert mode(reg.pointer_path("bias")) == 0o666 & ~umask
