"""`movierec retrain`: the next version of a registry model from its data plus the ratings
people gave in the service (`movierec.artifacts.retrain` does the work)."""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.cli.common import JSON_OPT, QUIET_OPT, Steps, app, out, print_json


@app.command("retrain")
def retrain_cmd(
    registry: Path = typer.Option(..., "--registry", "-r", help="The registry folder the service serves."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Registry name to retrain (default: the registry's only one)."),
    feedback_db: Path = typer.Option(None, "--feedback-db",
                                     help="The service's feedback SQLite file (default: REGISTRY/feedback.sqlite3)."),
    promote: str = typer.Option("if-better", "--promote",
                                help="always, if-better (when not worse than the current version on the "
                                     "held-out slice) or never."),
    seed: int = typer.Option(42, "--seed", help="Seeds the held-out slice and every fit."),
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Retrain NAME on the data it was trained on plus people's ratings; promote it if it is not worse.

    Compares the current and the new recipe on one held-out slice (each profile's most recent
    rating and a sample of the base data's), prints both side by side, stores the new version
    and makes it current according to --promote. A running `movierec serve` picks it up."""
    from movierec.artifacts.retrain import check_rule, retrain

    check_rule(promote)
    if not registry.is_dir():
        from movierec.errors import ConfigError

        raise ConfigError(f"No model registry at {registry}.")
    with Steps("retraining", 4, quiet=quiet) as steps:
        result = retrain(registry, model, feedback_db=feedback_db, promote=promote, seed=seed, progress=steps.start,
                         finish=_rebuild_index)
    if as_json:
        print_json(result.to_json())
        return
    from rich.table import Table

    table = Table(title=f"{result.name} {result.parent} (current) vs {result.version} (new): "
                        f"{result.slice['ratings']} held-out ratings, {result.slice['feedback']} from feedback")
    for col, justify in (("metric", "left"), ("current", "right"), ("new", "right")):
        table.add_column(col, justify=justify)
    for key in result.new:
        a, b = result.current.get(key), result.new.get(key)
        table.add_row(key, _fmt(a), _fmt(b))
    out.print(table)
    fb = result.feedback
    out.print(f"feedback: {fb['ratings']} ratings by {fb['profiles']} profile{'' if fb['profiles'] == 1 else 's'}"
              + (f" ({fb['ignored']} of movies the model lacks ignored)" if fb["ignored"] else ""), highlight=False)
    verdict = "promoted: now current" if result.promoted else f"stored, not promoted (version {result.parent} stays current)"
    out.print(f"version {result.version}: {verdict}; {result.reason}.", highlight=False, soft_wrap=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.4f}"
    return str(value)


def _rebuild_index(current, new) -> None:
    """Give the new version the kind of retrieval index the current one has."""
    from movierec.retrieval import ModelIndex, store_index, stored_index

    old = stored_index(current)
    if old is not None:
        store_index(new, ModelIndex.build(new.model, old.kind))
