"""`movierec models list/show/promote/rollback/verify` through Typer and the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from movierec.artifacts import Bundle, ModelRegistry
from movierec.cli import app
from movierec.errors import BundleError, RegistryError
from movierec.models import create

runner = CliRunner()
MOVIEREC = Path(sys.executable).with_name("movierec")


@pytest.fixture(scope="module")
def models(small_split):
    return {name: create(name).fit(small_split.train) for name in ("bias", "pop")}


@pytest.fixture
def reg(tmp_path, models, small_split) -> ModelRegistry:
    """bias versions 1 (current) and 2; pop version 1 (current)."""
    registry = ModelRegistry(tmp_path / "reg")
    for rmse in (0.95, 0.93):
        registry.add(Bundle.from_model(models["bias"], small_split.train, metrics={"rmse": rmse}))
    registry.add(Bundle.from_model(models["pop"], small_split.train, metrics={"ndcg@10": 0.2}))
    return registry


def invoke(*args: str):
    return runner.invoke(app, ["models", *args])


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_list_json_and_table(reg):
    listing = json.loads(ok("list", "--registry", str(reg.root), "--json").stdout)["models"]
    assert sorted(listing) == ["bias", "pop"]
    assert [(v["version"], v["current"], v["metrics"]) for v in listing["bias"]] == [
        ("1", True, {"rmse": 0.95}), ("2", False, {"rmse": 0.93})]
    assert listing["pop"][0]["model_name"] == "pop" and listing["pop"][0]["created"]
    table = ok("list", "--registry", str(reg.root)).stdout
    assert "bias" in table and "pop" in table and "rmse=0.93" in table


def test_show(reg):
    shown = json.loads(ok("show", "bias", "--registry", str(reg.root), "--json").stdout)
    assert (shown["version"], shown["current"], shown["model_class"]) == ("1", True, "movierec.models.bias:BiasOnly")
    assert shown["capabilities"] == reg.get("bias").manifest["capabilities"] and "state.safetensors" in shown["files"]
    shown = json.loads(ok("show", "bias", "--version", "2", "--registry", str(reg.root), "--json").stdout)
    assert (shown["version"], shown["current"], shown["metrics"]) == ("2", False, {"rmse": 0.93})
    assert "version 2" in ok("show", "bias", "-v", "2", "--registry", str(reg.root)).stdout


def test_promote_and_rollback(reg):
    out = ok("promote", "bias", "2", "--registry", str(reg.root)).stdout
    assert "version 2 is current (was 1)" in out and reg.current("bias").version == "2"
    out = ok("rollback", "bias", "--registry", str(reg.root)).stdout
    assert "rolled back to version 1" in out and reg.current("bias").version == "1"
    result = invoke("rollback", "bias", "--registry", str(reg.root))
    assert result.exit_code == 1 and isinstance(result.exception, RegistryError)


def test_verify(reg):
    assert ok("verify", "--registry", str(reg.root)).stdout.count("ok ") == 3
    (reg.root / "bias" / "2" / "users.npy").write_bytes(b"tampered")
    result = invoke("verify", "--registry", str(reg.root))
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: bias version 2: ") and "users.npy" in errors[0]
    assert result.stdout.count("ok ") == 2
    assert ok("verify", "pop", "--registry", str(reg.root)).stdout.count("ok ") == 1
    assert invoke("verify", "bias", "--version", "2", "--registry", str(reg.root)).exit_code == 1


def test_promote_corrupt_refused(reg):
    (reg.root / "bias" / "2" / "notes.txt").write_text("x")
    result = invoke("promote", "bias", "2", "--registry", str(reg.root))
    assert result.exit_code == 1 and isinstance(result.exception, BundleError) and "notes.txt" in str(result.exception)
    assert reg.current("bias").version == "1"


def test_missing_registry_and_names(reg, tmp_path):
    result = invoke("list", "--registry", str(tmp_path / "nowhere"))
    assert isinstance(result.exception, RegistryError) and "No model registry" in str(result.exception)
    result = invoke("show", "nope", "--registry", str(reg.root))
    assert isinstance(result.exception, RegistryError) and "bias, pop" in str(result.exception)
    assert "--" not in str(result.exception)


def test_console_script_one_sentence(reg):
    """The real `movierec` entry point: exit status 1 and one `error:` sentence on stderr."""
    proc = subprocess.run([str(MOVIEREC), "models", "promote", "bias", "9", "--registry", str(reg.root)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: Model 'bias' has no version 9; it has: 1, 2."]
    assert proc.stdout == ""
    (reg.root / "pop" / "1" / "state.safetensors").write_bytes(b"x")
    proc = subprocess.run([str(MOVIEREC), "models", "verify", "--registry", str(reg.root)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: pop version 1: ") and "state.safetensors" in lines[0]
