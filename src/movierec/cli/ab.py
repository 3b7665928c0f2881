"""`movierec ab report`: the A/B experiments logged by `movierec serve --experiment FILE`.

Reads the impressions and outcomes in the feedback database (`movierec.data.ab_log`) and
prints, per experiment and variant, people, lists shown, the rating rate of shown movies
and mean stars with 95% intervals, each variant's difference from the first with its
p-value, and the sample-ratio-mismatch check (`movierec.evaluation.ab`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from movierec.cli.common import app, out, print_json
from movierec.errors import ConfigError

ab_app = typer.Typer(help="A/B experiments run by `movierec serve --experiment FILE`.", no_args_is_help=True)
app.add_typer(ab_app, name="ab")


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _estimate(est: dict[str, Any]) -> str:
    low, high = est["ci"]
    if est["value"] is None:
        return "-"
    if low is None:
        return _num(est["value"])
    return f"{_num(est['value'])} [{_num(low)}, {_num(high)}]"


def _diff(d: dict[str, Any] | None) -> str:
    if d is None or d["diff"] is None:
        return "-"
    return f"{d['diff']:+.3f} (p={d['p_value']:.2g})"


def _print(report: dict[str, Any]) -> None:
    name = report["experiment"]
    if report["kind"] == "interleaved":
        a, b = report["variants"]
        out.print(f"Experiment {name} (interleaved): {report['impressions']} lists to {report['people']} people.",
                  highlight=False, soft_wrap=True)
        table = Table("variant", "credited ratings", "lists won", "mean stars")
        for row in (a, b):
            table.add_row(row["variant"], str(row["credited_ratings"]), str(row["wins"]), _num(row["mean_stars"], 2))
        out.print(table)
        p = report["p_value"]
        out.print(f"Ties: {report['ties']}; sign test of the wins: p = {'-' if p is None else f'{p:.3g}'}.",
                  highlight=False, soft_wrap=True)
        return
    out.print(f"Experiment {name} (control: {report['control']}).", highlight=False, soft_wrap=True)
    table = Table("variant", "share", "people", "lists", "shown", "rated", "rating rate [95% CI]", "vs control",
                  "mean stars [95% CI]", "vs control")
    for row in report["variants"]:
        vs = row.get("vs_control") or {}
        table.add_row(row["variant"], f"{row['share']:g}", str(row["people"]), str(row["impressions"]),
                      str(row["shown"]), str(row["rated"]), _estimate(row["rating_rate"]), _diff(vs.get("rating_rate")),
                      _estimate(row["mean_stars"]), _diff(vs.get("mean_stars")))
    out.print(table)
    srm = report["srm"]
    if srm["p_value"] is None:
        out.print("Sample ratio check: too few people to check.", highlight=False)
    elif srm["flagged"]:
        out.print(f"[bold red]Sample ratio mismatch[/]: the people per variant do not follow the shares (chi-square "
                  f"p = {srm['p_value']:.2g}); bucketing or logging is broken, so trust no difference above.",
                  soft_wrap=True)
    else:
        out.print(f"Sample ratio check: ok (chi-square p = {srm['p_value']:.2g}).", highlight=False)
    if report["switched_people"]:
        out.print(f"{report['switched_people']} people were shown more than one variant.", highlight=False)


@ab_app.command("report")
def report_cmd(
    db: Path = typer.Option(None, "--db", help="The feedback SQLite file the service logged to (default: "
                                               "feedback.sqlite3 in --registry)."),
    registry: Path = typer.Option(None, "--registry", "-r", envvar="MOVIEREC_REGISTRY",
                                  help="The served registry, whose feedback.sqlite3 is read when --db is not given."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Per experiment and variant: people, lists shown, rating rate of shown movies and mean
    stars with 95% intervals, the difference from the first variant, and the sample-ratio check."""
    if db is None:
        if registry is None:
            raise ConfigError("Name the feedback database with --db FILE, or the served registry with --registry DIR.")
        db = registry / "feedback.sqlite3"
    from movierec.data.ab_log import AbLog, has_log
    from movierec.evaluation.ab import ab_report

    if not db.is_file():
        raise ConfigError(f"No feedback database at {db}.")
    if not has_log(db):
        raise ConfigError(f"{db} holds no A/B log; serve with --experiment FILE to start one.")
    log = AbLog(db)
    try:
        reports = ab_report(log)
    finally:
        log.close()
    if as_json:
        print_json({"db": str(db), "experiments": reports})
        return
    if not reports:
        out.print("No experiment has been logged yet.", highlight=False)
    for report in reports:
        _print(report)
