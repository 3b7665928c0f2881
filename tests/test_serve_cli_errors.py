"""`movierec serve` through the real CLI: a busy port refused in one sentence before
"Serving" is printed, `--model-dir DIR` serving one model folder, a registry with several
names refused without `--model` (the sentence lists them), and MOVIEREC_REGISTRY still
naming the registry now that `--registry` is not required."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import ConfigError, RegistryError
from serving_helpers import MOVIEREC, NAME, free_port, make_registry

runner = CliRunner()
OTHER = "other"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    """One name, "movies": versions 1 (ALS, current) and 2 (EASE)."""
    return make_registry(tmp_path_factory.mktemp("serve_cli_registry"), ml100k)


@pytest.fixture(scope="module")
def several(registry, tmp_path_factory) -> Path:
    """Two names: "movies" (EASE) and "other" (ALS)."""
    from movierec.artifacts import ModelRegistry

    root = tmp_path_factory.mktemp("serve_cli_several")
    source = ModelRegistry(registry)
    ModelRegistry(root).add(source.load(NAME, "2"), NAME)
    ModelRegistry(root).add(source.load(NAME, "1"), OTHER)
    return root


@pytest.fixture()
def busy_port():
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def env_without(*names: str, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in names}, "MOVIEREC_DEBUG": "", **extra}


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `movierec ARGS` as a person would: exit 1, one `error:` line, nothing on stdout."""
    proc = subprocess.run([str(MOVIEREC), *args], capture_output=True, text=True, timeout=120,
                          env=env or env_without("MOVIEREC_REGISTRY"))
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Serving" not in proc.stdout and not proc.stdout.strip(), proc.stdout
    return lines[0]


def invoke_refused(args: list[str], env: dict[str, str] | None = None) -> str:
    """`movierec serve ARGS` through typer's runner: a ConfigError or RegistryError, exit 1."""
    result = runner.invoke(app, ["serve", *args], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, (ConfigError, RegistryError)), \
        (result.exit_code, result.output, result.exception)
    assert "Serving" not in result.output
    return str(result.exception)


class Served:
    """`movierec serve ARGS --port P` in a subprocess until /ready answers; stopped on exit."""

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str]):
        self.port = free_port()
        self.log = tmp / f"serve-{self.port}.log"
        cmd = [str(MOVIEREC), "serve", *args, "--port", str(self.port), "--feedback-db", str(tmp / "fb.sqlite3")]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"movierec serve exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"movierec serve was not ready: {self.log.read_text()[-2000:]}")

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- a busy port -------------------------------------------------------------------------------
def test_a_busy_port_is_refused_in_one_sentence_before_serving(registry, busy_port):
    line = refused("serve", "--registry", str(registry), "--port", str(busy_port))
    assert line == (f"error: Port {busy_port} on 127.0.0.1 is already in use; stop the program using it "
                    "(another movierec serve?) or choose another port with --port.")


def test_a_host_that_is_not_this_machines_is_refused(registry):
    assert "not an address of this machine" in invoke_refused(
        ["--registry", str(registry), "--host", "192.0.2.1", "--port", str(free_port())])
    assert "no such host name" in invoke_refused(
        ["--registry", str(registry), "--host", "no-such-host.invalid", "--port", str(free_port())])


# -- --model-dir -------------------------------------------------------------------------------
def test_model_dir_serves_one_model_folder(registry, tmp_path):
    with Served(["--model-dir", str(registry / NAME / "2")], tmp_path, env_without("MOVIEREC_REGISTRY")) as s:
        health = httpx.get(f"{s.base}/health", timeout=30).json()
        assert health["model"]["version"] == "2" and health["n_movies"] == 1682
        assert httpx.get(f"{s.base}/recommend", params={"user_id": 1}, timeout=30).status_code == 200
    first = s.log.read_text().splitlines()[0]
    assert first.startswith(f"Serving {health['model']['name']} version 2 at http://localhost:{s.port}/")


def test_model_dir_is_refused_with_what_goes_with_a_registry(registry, tmp_path, busy_port):
    bundle, port = str(registry / NAME / "2"), ["--port", str(busy_port)]  # a missed check fails on the port
    assert "not both" in invoke_refused(["--model-dir", bundle, "--registry", str(registry), *port])
    assert "drop --model" in invoke_refused(["--model-dir", bundle, "--model", NAME, *port])
    assert "is not a model folder" in invoke_refused(["--model-dir", str(registry), *port])
    assert "No model folder at" in invoke_refused(["--model-dir", str(tmp_path / "missing"), *port])
    line = refused("serve", *port)  # nothing named, no MOVIEREC_REGISTRY
    assert "--registry DIR" in line and "--model-dir DIR" in line


def test_registry_still_takes_a_model_folder(registry, busy_port):
    """`--registry` given a bundle folder is served as before: it gets past every check but the port."""
    assert "already in use" in invoke_refused(["--registry", str(registry / NAME / "2"), "--port", str(busy_port)])


# -- several names -----------------------------------------------------------------------------
def test_a_registry_with_several_names_needs_model(several, busy_port):
    line = refused("serve", "--registry", str(several), "--port", str(free_port()))
    assert line == (f"error: The registry {several} holds several models ({NAME}, {OTHER}); "
                    "choose one with --model NAME.")
    # with --model it goes on: the only thing left to refuse is the busy port
    assert "already in use" in invoke_refused(["--registry", str(several), "--model", OTHER, "--port", str(busy_port)])
    assert "no model named 'nope'" in invoke_refused(["--registry", str(several), "--model", "nope",
                                                      "--port", str(busy_port)])


def test_create_app_refuses_several_names_without_a_model(several):
    from movierec.serving.app import create_app

    with pytest.raises(RegistryError, match=rf"holds several models \({NAME}, {OTHER}\); name the one to serve"):
        create_app(several, admin_token=None)


# -- MOVIEREC_REGISTRY -------------------------------------------------------------------------
def test_the_registry_variable_still_names_the_registry(several, tmp_path):
    env = env_without("MOVIEREC_REGISTRY", MOVIEREC_REGISTRY=str(several))
    assert "holds several models" in refused("serve", "--port", str(free_port()), env=env)
    with Served(["--model", OTHER], tmp_path, env) as s:
        assert httpx.get(f"{s.base}/health", timeout=30).json()["model"] == {"name": OTHER, "version": "1"}


def test_a_model_dir_flag_wins_over_the_registry_variable(registry, several, busy_port):
    """MOVIEREC_REGISTRY (several names, no --model) gives way to --model-dir: only the busy port is left."""
    env = {"MOVIEREC_REGISTRY": str(several)}
    line = invoke_refused(["--model-dir", str(registry / NAME / "2"), "--port", str(busy_port)], env=env)
    assert "already in use" in line
