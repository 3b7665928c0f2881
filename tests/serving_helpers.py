"""Shared by the service tests: a small registry, and a real uvicorn on a free loopback port.

`make_registry(root, data)` stores two versions of one name, "movies": 1 = ALS
(current), 2 = EASE, so their answers differ and each answer can be checked against the
version it names. `LiveServer` runs uvicorn over `create_app(ServeSettings(...))` (or
`movierec serve`) in a subprocess, waits for /ready, and stops it (or kills it with SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

NAME = "movies"
TOKEN = "test-admin-token-0123456789"
MOVIEREC = Path(sys.executable).with_name("movierec")

_RUN_APP = """
import json, sys, uvicorn
from movierec.serving.app import create_app
from movierec.serving.settings import ServeSettings
args = json.loads(sys.argv[1])
port = args.pop("port")
settings = ServeSettings.from_environment(args.pop("source"), **args)
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def error(response: httpx.Response, status: int) -> str:
    """The one-sentence `detail` of an error answer (the shape: tests/test_api_errors.py)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail, response.text
    return detail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_registry(root: Path, data, users: int = 200) -> Path:
    """A registry at `root` with "movies" versions 1 (ALS, current) and 2 (EASE), fitted on
    the first `users` users of `data` (all of its movies stay known)."""
    from movierec.artifacts import Bundle, ModelRegistry
    from movierec.models import create

    part = data.subset(data.user_idx < users) if users else data
    registry = ModelRegistry(root)
    registry.add(Bundle.from_model(create("als", seed=0).fit(part), part), NAME)
    registry.add(Bundle.from_model(create("ease").fit(part), part), NAME, promote=False)
    return root


def long_id_bundle(tmp: Path):
    """A bundle (popularity over 20 users and 30 movies) whose movie IDs are texts longer
    than the API takes (`schemas.MAX_ID_CHARS`): it verifies, but the service cannot serve
    it (`ServedModel.build` refuses it: such a movie could never be asked about)."""
    from movierec.artifacts import Bundle
    from movierec.data import load_ratings
    from movierec.models import create

    path = tmp / "long-ids.csv"
    rows = [f"{u},{'m' * 250}{(u * 7 + j) % 30},{1 + (u + j) % 5},{1000 + j}" for u in range(1, 21) for j in range(8)]
    path.write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    data = load_ratings(path)
    return Bundle.from_model(create("pop").fit(data), data)


class LiveServer:
    """A real server in a subprocess on a free loopback port.

    Args:
        registry: what to serve.
        tmp: a folder for the log (and the default feedback database).
        cli: run `movierec serve` (with `workers` and `cli_args`) instead of uvicorn over
            create_app; the admin token then comes from `env` (MOVIEREC_ADMIN_TOKEN).
        options: `ServeSettings` fields (feedback_db, admin_token, watch_interval, cache_size,
            threads, ...); admin_token defaults to MOVIEREC_ADMIN_TOKEN, as in `movierec serve`.
    """

    def __init__(self, registry: Path, tmp: Path, *, cli: bool = False, workers: int = 1,
                 env: dict[str, str] | None = None, cli_args: tuple[str, ...] = (), **options: Any):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        options.setdefault("feedback_db", str(tmp / "feedback.sqlite3"))
        self.feedback_db = Path(options["feedback_db"])
        full_env = {**os.environ, **(env or {})}
        if cli:
            cmd = [str(MOVIEREC), "serve", "--registry", str(registry), "--port", str(self.port),
                   "--workers", str(workers), "--feedback-db", str(self.feedback_db), *cli_args]
        else:
            args = {"source": str(registry), "port": self.port, **options}
            cmd = [sys.executable, "-c", _RUN_APP, json.dumps(args)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.base, timeout=60)
        self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.log()[-3000:]}")
            try:
                if self.client.get("/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in {timeout} s: {self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kw) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.client.post(path, **kw)

    def admin(self, method: str, path: str, token: str | None = TOKEN, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.request(method, path, headers=headers, **kw)

    def kill(self) -> None:
        """SIGKILL the server (and its workers): no shutdown code runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        self.client.close()
        if not self._log.closed:
            self._log.close()

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
