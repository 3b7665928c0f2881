"""`movierec models ...`: the models movierec offers (`available`); list, show, promote,
roll back and verify registry versions.

Other command modules may add commands to this group: `from movierec.cli.registry import models_app`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.cli.common import app
from movierec.cli.common import out, print_json

models_app = typer.Typer(
    help="The models on offer (available); manage a registry: list, show, promote, roll back, verify versions.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

REGISTRY_OPT = typer.Option(..., "--registry", "-r", envvar="MOVIEREC_REGISTRY",
                            help="Registry folder (or set MOVIEREC_REGISTRY).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")


def _open(root: Path):
    from movierec.artifacts import ModelRegistry
    from movierec.errors import RegistryError

    if not root.is_dir():
        raise RegistryError(f"No model registry at {root}.")
    return ModelRegistry(root)


def _key_metrics(metrics: dict, limit: int = 3) -> str:
    shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    return "  ".join(shown[:limit])


def _summary(v) -> dict:
    m = v.manifest
    return {
        "name": v.name,
        "version": v.version,
        "current": v.current,
        "path": str(v.path),
        "created": m.get("created"),
        "model_name": m.get("model_name"),
        "model_class": m.get("model_class"),
        "params": m.get("params", {}),
        "capabilities": m.get("capabilities", []),
        "metrics": m.get("metrics", {}),
        "info": m.get("info", {}),
        "data_fingerprint": m.get("data_fingerprint"),
        "n_users": m.get("n_users"),
        "n_items": m.get("n_items"),
        "movierec_version": m.get("movierec_version"),
        "format_version": m.get("format_version"),
        "files": {name: entry.get("bytes") for name, entry in (m.get("files") or {}).items() if isinstance(entry, dict)},
    }


@models_app.command("list")
def list_cmd(registry: Path = REGISTRY_OPT, as_json: bool = JSON_OPT) -> None:
    """Every model name, its versions, which is current, when created, key metrics."""
    reg = _open(registry)
    listing = {name: [_summary(v) for v in reg.versions(name)] for name in reg.names()}
    if as_json:
        print_json({"registry": str(registry), "models": listing})
        return
    if not listing:
        out.print(f"The registry {registry} holds no models yet.")
        return
    from rich.table import Table

    table = Table(title=f"models in {registry}")
    for col in ("name", "version", "current", "model", "created", "metrics"):
        table.add_column(col)
    for name, versions in listing.items():
        for s in versions:
            table.add_row(name, s["version"], "*" if s["current"] else "", s["model_name"] or "?",
                          s["created"] or "?", _key_metrics(s["metrics"] or {}))
    out.print(table)


@models_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Registry name of the model."),
    version: str = typer.Option(None, "--version", "-v", help="Version to show (default: the current one)."),
    registry: Path = REGISTRY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """A summary of one version's manifest."""
    s = _summary(_open(registry).get(name, version))
    if as_json:
        print_json(s)
        return
    from rich.table import Table

    table = Table(title=f"{name} version {s['version']}{' (current)' if s['current'] else ''}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("model", f"{s['model_name']} ({s['model_class']})")
    table.add_row("params", ", ".join(f"{k}={v}" for k, v in (s["params"] or {}).items()) or "-")
    table.add_row("capabilities", ", ".join(s["capabilities"] or []) or "-")
    table.add_row("metrics", _key_metrics(s["metrics"] or {}, limit=20) or "-")
    table.add_row("users x movies", f"{s['n_users']} x {s['n_items']}")
    table.add_row("data fingerprint", str(s["data_fingerprint"] or "-"))
    table.add_row("created", f"{s['created']} by movierec {s['movierec_version']}")
    table.add_row("path", s["path"])
    out.print(table)


@models_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Registry name of the model."),
    version: str = typer.Argument(..., help="Version to make current."),
    registry: Path = REGISTRY_OPT,
) -> None:
    """Make a version current (after verifying its bundle)."""
    reg = _open(registry)
    before = reg.current(name)
    now = reg.promote(name, version)
    was = f" (was {before.version})" if before is not None and before.version != now.version else ""
    out.print(f"{name}: version {now.version} is current{was}.")


@models_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Registry name of the model."),
    registry: Path = REGISTRY_OPT,
) -> None:
    """Make the previously current version current again."""
    reg = _open(registry)
    before = reg.current(name)
    now = reg.rollback(name)
    was = f" (was {before.version})" if before is not None else ""
    out.print(f"{name}: rolled back to version {now.version}{was}.")


@models_app.command("verify")
def verify_cmd(
    name: str = typer.Argument(None, help="Registry name (default: every model)."),
    version: str = typer.Option(None, "--version", "-v", help="Only this version."),
    registry: Path = REGISTRY_OPT,
) -> None:
    """Check every file of the stored bundles; exit 1 with one line per bad version."""
    results = _open(registry).verify(name, version)
    bad = [(v, err) for v, err in results if err]
    for v, err in results:
        if err is None:
            out.print(f"ok  {v.name} {v.version}")
    for v, err in bad:
        typer.secho(f"error: {v.name} version {v.version}: {err}", err=True, fg=typer.colors.RED)
    if bad:
        raise typer.Exit(1)
    if not results:
        out.print(f"The registry {registry} holds no models yet.")


# -- the models movierec offers --------------------------------------------------------
def _space_entry(dist) -> dict:
    """A declared search-space entry as JSON: {"type", ...bounds or choices, "describe"}."""
    from movierec.models.space import Categorical, Float

    if isinstance(dist, Categorical):
        doc = {"type": "categorical", "choices": list(dist.choices)}
    else:
        doc = {"type": "float" if isinstance(dist, Float) else "int", "low": dist.low, "high": dist.high,
               "log": dist.log}
    doc["describe"] = dist.describe()
    return doc


def model_info(name: str) -> dict:
    """What `models available` shows for one registered model: its kind, declared
    capabilities, constructor parameters with defaults and tunable parameters (from the
    registry's metadata: no model class, so no torch, is imported for built-in models)."""
    from movierec.models.registry import model_info as declared

    info = declared(name)
    return {
        "name": name,
        "class": info.target,
        "kind": info.kind,
        "summary": info.summary,
        "capabilities": list(info.capabilities),
        "params": dict(info.params),
        "tunable": {key: _space_entry(dist) for key, dist in info.search_space.items()},
    }


@models_app.command("available")
def available_cmd(
    model: str = typer.Argument(None, help="Only this model (default: every model)."),
    as_json: bool = JSON_OPT,
) -> None:
    """The models movierec offers: kind (rating/ranking), capabilities, parameters with defaults, tunable ones."""
    from movierec.models import available

    names = [model] if model is not None else available()
    infos = [model_info(n) for n in names]
    if as_json:
        print_json({"models": infos})
        return
    from rich.markup import escape

    for info in infos:
        caps = ", ".join(info["capabilities"]) or "-"
        out.print(f"[bold]{info['name']}[/bold]  ({info['kind']})  {escape(info['summary'])}", highlight=False)
        out.print(f"  capabilities: {caps}", highlight=False)
        params = ", ".join(f"{k}={v!r}" for k, v in info["params"].items()) or "-"
        out.print(f"  parameters:   {escape(params)}", highlight=False)
        tunable = "; ".join(f"{k}: {e['describe']}" for k, e in info["tunable"].items()) or "- (not tunable)"
        out.print(f"  tunable:      {escape(tunable)}", highlight=False)
    if model is None:
        out.print("Train one with `movierec train --model NAME --param key=value`; "
                  "`movierec tune --model NAME` searches the tunable parameters.", highlight=False)
