"""`movierec serve` (the web page and HTTP API over a registry or one model folder) and
`movierec feedback export`.

FastAPI and uvicorn are imported inside the commands, so `movierec --help` stays fast.
`movierec serve` checks what it is asked to serve (`--registry DIR [--model NAME]` or
`--model-dir DIR`) and that its port is free, each refused in one sentence before anything
loads; it then reads its settings once (flags, and MOVIEREC_ADMIN_TOKEN for the admin
token) into one `ServeSettings`, loads the model once to check it, and, with several
workers, hands the whole settings object to every worker in MOVIEREC_SERVE_SETTINGS
(uvicorn imports the app factory `movierec.serving.app:app_from_env` in each worker).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import typer

from movierec.cli.common import app, out
from movierec.errors import ConfigError
from movierec.serving.cache import MEMORY
from movierec.serving.settings import CACHE_SIZE, THREADS, WATCH_INTERVAL, ServeSettings

feedback_app = typer.Typer(help="The ratings people gave on the web page: export them to retrain on.",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


def _from_environment(ctx: typer.Context | None, parameter: str) -> bool:
    """True when `parameter` got its value from its environment variable, not a flag."""
    source = ctx.get_parameter_source(parameter) if ctx is not None else None
    return getattr(source, "name", None) == "ENVIRONMENT"  # click's ParameterSource (typer ships its own click)


def serve_source(registry: Path | None, model_dir: Path | None, model: str | None, *,
                 registry_from_env: bool = False) -> Path:
    """The folder `movierec serve` serves: `--model-dir DIR` (one model folder) or
    `--registry DIR` (a registry, or a model folder as before), checked without loading.

    A MOVIEREC_REGISTRY from the environment gives way to a `--model-dir` flag.

    Raises:
        ConfigError: neither or both given, --model with --model-dir, a --model-dir that is
            not a model folder, or a registry holding several names and no --model (the
            sentence lists them).
        RegistryError: a missing or empty registry, an unknown name, no current version.
    """
    from movierec.artifacts import ModelRegistry, is_bundle_dir

    if model_dir is not None and registry is not None and registry_from_env:
        registry = None
    if model_dir is not None:
        if registry is not None:
            raise ConfigError("Give either --model-dir DIR (one model folder) or --registry DIR, not both.")
        if model is not None:
            raise ConfigError("--model names a model in a registry; --model-dir serves its one model, so drop --model.")
        if not model_dir.is_dir():
            raise ConfigError(f"No model folder at {model_dir}.")
        if not is_bundle_dir(model_dir):
            raise ConfigError(f"{model_dir} is not a model folder (no movierec manifest.json); serve a registry "
                              "with --registry DIR, or a folder written by `movierec train --out`.")
        return model_dir.resolve()
    if registry is None:
        raise ConfigError("Name what to serve: --registry DIR (a model registry; or set MOVIEREC_REGISTRY) "
                          "or --model-dir DIR (one model folder written by `movierec train --out`).")
    if model is None and registry.is_dir() and not is_bundle_dir(registry):
        names = ModelRegistry(registry).names()
        if len(names) > 1:
            raise ConfigError(f"The registry {registry} holds several models ({', '.join(names)}); "
                              "choose one with --model NAME.")
    from movierec.serving.server import check_source

    check_source(registry, model)  # a missing or empty registry, an unknown name: before the port is looked at
    return registry.resolve()


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one sentence, a host:port that uvicorn could not listen on (in use, not an
    address of this machine, a privileged port, an unknown host name) -- before the model
    loads and before "Serving ..." is printed.

    Binds the way uvicorn does (SO_REUSEADDR, IPv6 for an address with ":") and closes at
    once; the port could still be taken in the instant before uvicorn binds it.

    Raises:
        ConfigError: the port cannot be listened on (the sentence says why).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except socket.gaierror:
        raise ConfigError(f"Cannot listen on {host!r}: no such host name or address; give --host an address "
                          "of this machine (127.0.0.1 for this machine only, 0.0.0.0 for every network).") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"Port {port} on {host} is already in use; stop the program using it "
                              "(another movierec serve?) or choose another port with --port.") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"{host} is not an address of this machine; give --host one of its addresses "
                              "(127.0.0.1 for this machine only, 0.0.0.0 for every network).") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"Port {port} on {host} needs administrator rights; choose a port above 1023 "
                              "with --port.") from None
        raise ConfigError(f"Cannot listen on port {port} on {host}: {exc.strerror or exc}.") from None
    finally:
        sock.close()


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    registry: Path = typer.Option(None, "--registry", "-r", envvar="MOVIEREC_REGISTRY",
                                  help="Registry folder to serve (its current version of --model); a single "
                                       "model folder is taken too."),
    model_dir: Path = typer.Option(None, "--model-dir",
                                   help="One model folder (written by `movierec train --out`) to serve, "
                                        "instead of a registry."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Registry name to serve (needed when the registry holds several)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (each watches the registry)."),
    feedback_db: Path = typer.Option(None, "--feedback-db",
                                     help="SQLite file for people's ratings (default: feedback.sqlite3 in the "
                                          "registry, or beside the model folder)."),
    cache: str = typer.Option(MEMORY, "--cache",
                              help="Where answers are kept: memory (each worker's own) or a Redis URL "
                                   "redis://HOST:PORT/DB shared by every worker and replica."),
    cache_size: int = typer.Option(CACHE_SIZE, "--cache-size",
                                   help="Answers to GET /recommend and /similar kept per model version in each "
                                        "worker's memory (0: no answer cache, in memory or in Redis; "
                                        "Redis' own memory limit bounds what it keeps)."),
    threads: int = typer.Option(THREADS, "--threads",
                                help="Compute (BLAS/OpenMP) threads per worker; more than 1 rarely helps under load."),
    watch_interval: float = typer.Option(WATCH_INTERVAL, "--watch-interval",
                                         help="Seconds between each worker's looks at the registry's pointer "
                                              "(0: never look)."),
    experiment: list[Path] = typer.Option(None, "--experiment",
                                          help="An A/B experiment file (JSON: name, variants with share, version, "
                                               "rerank); repeat it for experiments whose times do not overlap."),
) -> None:
    """Serve a model: the web page at / and the JSON API (documented at /docs, offline).

    `--registry DIR` serves the registry's current version of `--model` (which may be left
    out when the registry holds one name) and follows promotions; `--model-dir DIR` serves
    one model folder. Admin routes (/admin/...) exist only when MOVIEREC_ADMIN_TOKEN is set.
    `--experiment FILE` runs an A/B experiment: each person's lists come from their variant,
    and what was shown and rated is logged in the feedback database (`movierec ab report`)."""
    if not 0 < port < 65536:
        raise ConfigError(f"The port must be between 1 and 65535, got {port}.")
    if workers < 1:
        raise ConfigError(f"There must be at least one worker, got {workers}.")
    source = serve_source(registry, model_dir, model, registry_from_env=_from_environment(ctx, "registry"))
    experiments = tuple(f.resolve() for f in experiment or ())
    if experiments:  # a bad file is refused before the port is looked at (versions: when the model loads)
        from movierec.serving.ab import check_together, load_experiment

        check_together([load_experiment(f) for f in experiments])
    settings = ServeSettings.from_environment(
        source, model=model, feedback_db=feedback_db.resolve() if feedback_db else None,
        cache=cache, cache_size=cache_size, threads=threads, watch_interval=watch_interval,
        experiments=experiments)
    check_port_free(host, port)
    import uvicorn

    from movierec.serving.app import create_app

    # loading here checks the registry and the model before any worker starts
    application = create_app(settings)
    resolved: ServeSettings = application.state.settings  # the model name and feedback file, as found
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    current = application.state.server.current
    out.print(f"Serving {resolved.model} version {current.version or '-'} at http://{shown}:{port}/ "
              "(API docs: /docs); Ctrl-C stops it.", highlight=False, soft_wrap=True)
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
        return
    # every worker builds its app from the same settings: one environment variable carries them
    os.environ.update(resolved.to_env())
    application.state.store.close()
    del application
    uvicorn.run("movierec.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@feedback_app.command("export")
def export_cmd(
    db: Path = typer.Option(..., "--db", help="The feedback SQLite file (REGISTRY/feedback.sqlite3 by default)."),
    out_file: Path = typer.Option(..., "--out", "-o", help="CSV file to write (userId,movieId,rating,timestamp)."),
    user_offset: int = typer.Option(0, "--user-offset",
                                    help="Profiles become users OFFSET+1, OFFSET+2, ... (give the data's largest user ID)."),
) -> None:
    """Write the stored ratings as a MovieLens-format CSV, one user per profile."""
    if not db.is_file():
        raise ConfigError(f"No feedback database at {db}.")
    from movierec.data.feedback import FeedbackStore

    store = FeedbackStore(db)
    try:
        users = store.export_movielens(out_file, user_offset=user_offset)
        total = store.count()
    finally:
        store.close()
    out.print(f"Wrote {total} ratings by {len(users)} profiles to {out_file}.", highlight=False, soft_wrap=True)
