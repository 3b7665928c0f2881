"""`movierec serve` (the web page and HTTP API over a registry) and `movierec feedback export`.

FastAPI and uvicorn are imported inside the commands, so `movierec --help` stays fast.
`movierec serve` reads its settings once (flags, and MOVIEREC_ADMIN_TOKEN for the admin
token) into one `ServeSettings`, loads the model once to check it, and, with several
workers, hands the whole settings object to every worker in MOVIEREC_SERVE_SETTINGS
(uvicorn imports the app factory `movierec.serving.app:app_from_env` in each worker).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from movierec.cli.common import app, out
from movierec.errors import ConfigError
from movierec.serving.settings import CACHE_SIZE, THREADS, WATCH_INTERVAL, ServeSettings

feedback_app = typer.Typer(help="The ratings people gave on the web page: export them to retrain on.",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@app.command("serve")
def serve_cmd(
    registry: Path = typer.Option(..., "--registry", "-r", envvar="MOVIEREC_REGISTRY",
                                  help="Registry folder (or a single model folder) to serve."),
    model: str = typer.Option(None, "--model", "-m", help="Registry name to serve (default: the registry's first)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (each watches the registry)."),
    feedback_db: Path = typer.Option(None, "--feedback-db",
                                     help="SQLite file for people's ratings (default: REGISTRY/feedback.sqlite3)."),
    cache_size: int = typer.Option(CACHE_SIZE, "--cache-size",
                                   help="Answers to GET /recommend and /similar kept per model version in each "
                                        "worker (0: no answer cache)."),
    threads: int = typer.Option(THREADS, "--threads",
                                help="Compute (BLAS/OpenMP) threads per worker; more than 1 rarely helps under load."),
    watch_interval: float = typer.Option(WATCH_INTERVAL, "--watch-interval",
                                         help="Seconds between each worker's looks at the registry's pointer "
                                              "(0: never look)."),
) -> None:
    """Serve the registry's current model: the web page at / and the JSON API (documented at /docs).

    Admin routes (/admin/...) exist only when MOVIEREC_ADMIN_TOKEN is set."""
    if not 0 < port < 65536:
        raise ConfigError(f"The port must be between 1 and 65535, got {port}.")
    if workers < 1:
        raise ConfigError(f"There must be at least one worker, got {workers}.")
    settings = ServeSettings.from_environment(
        registry.resolve(), model=model, feedback_db=feedback_db.resolve() if feedback_db else None,
        cache_size=cache_size, threads=threads, watch_interval=watch_interval)
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
    from movierec.serving.store import FeedbackStore

    store = FeedbackStore(db)
    try:
        users = store.export_movielens(out_file, user_offset=user_offset)
        total = store.count()
    finally:
        store.close()
    out.print(f"Wrote {total} ratings by {len(users)} profiles to {out_file}.", highlight=False, soft_wrap=True)
