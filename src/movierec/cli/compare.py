"""`movierec compare`: parse -> `movierec.experiments.compare` -> print (table, JSON, report)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from movierec.cli.common import (
    app,
    DATA_OPT,
    DATASET_OPT,
    DEVICE_OPT,
    HOLDOUT_HELP,
    ITEM_COL_OPT,
    JSON_OPT,
    PROTOCOLS_HELP,
    QUIET_OPT,
    RATING_COL_OPT,
    RATING_RANGE_OPT,
    SEED_OPT,
    SEP_OPT,
    TEST_OPT,
    THREADS_OPT,
    TIME_COL_OPT,
    TRAIN_OPT,
    USER_COL_OPT,
    Steps,
    check_read_options,
    console,
    fetch_progress,
    out,
    parse_value,
    print_json,
    read_options,
    reading_data,
    runtime_from_options,
)
from movierec.errors import ConfigError
from movierec.evaluation.protocols import parse_relevance_threshold, protocol_label


def parse_ks(value: str) -> list[int]:
    """'10,20' -> [10, 20]."""
    try:
        ks = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"-k takes whole numbers separated by commas, like 10,20; got {value!r}.") from None
    if not ks or any(k < 1 for k in ks):
        raise ConfigError(f"-k values must be positive whole numbers, got {value!r}.")
    return sorted(set(ks))


def parse_models(value: str) -> list[str]:
    """'random,pop' -> ['random', 'pop']."""
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        raise ConfigError("--models needs at least one model name, e.g. --models random,pop.")
    if len(set(names)) != len(names):
        raise ConfigError(f"--models lists a model twice: {value!r}.")
    return names


MOVIES_OPT = typer.Option(None, "--movies",
                          help="With --data or --train/--test: a movies file for titles and genres (MovieLens "
                               "movies.csv layout movieId,title,genres, or a CSV with id, title and genres columns).")


def parse_weights(value: str | None) -> list[float] | None:
    """'0,0.1,0.5' -> [0.0, 0.1, 0.5] (None: the default weights)."""
    if value is None:
        return None
    try:
        weights = [float(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--curve-weights takes numbers from 0 to 1 separated by commas, like 0,0.3,1; "
                          f"got {value!r}.") from None
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise ConfigError(f"--curve-weights takes numbers from 0 to 1 separated by commas, like 0,0.3,1; "
                          f"got {value!r}.")
    return weights


def parse_model_params(items: list[str] | None) -> dict[str, dict]:
    """--param MODEL.key=value (repeatable) -> {model: {key: value}}."""
    params: dict[str, dict] = {}
    for item in items or []:
        target, sep, value = item.partition("=")
        model, dot, key = target.partition(".")
        if not sep or not dot or not model.strip() or not key.strip():
            raise ConfigError(f"compare's --param takes model.key=value (e.g. ease.regularization=300), got {item!r}.")
        params.setdefault(model.strip(), {})[key.strip()] = parse_value(value)
    return params


@app.command("compare")
def compare_cmd(
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = MOVIES_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    train: Path = TRAIN_OPT,
    test: Path = TEST_OPT,
    protocol: str = typer.Option("temporal", "--protocol", help=PROTOCOLS_HELP + "."),
    holdout: float = typer.Option(None, "--holdout", "--test-fraction", help=HOLDOUT_HELP),
    models: str = typer.Option("random,pop", "--models", "-m", help="Comma-separated model names, e.g. random,pop,mf."),
    k: str = typer.Option("10", "-k", "--k", help="Cut-offs, e.g. 10,20."),
    relevance_threshold: str = typer.Option(
        None, "--relevance-threshold",
        help="Test ratings >= this are relevant. Default: 4 on a 1-5 scale (low + 0.75 x range); 'none' = all."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the standard set)."),
    sampled_negatives: int = typer.Option(0, "--sampled-negatives",
                                          help="Rank among N sampled negatives instead of all movies (not recommended)."),
    param: list[str] = typer.Option(None, "--param", "-p",
                                    help="Hyperparameter of one model, model.key=value (repeatable); overrides tuned configs."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Write report.md, results.json, per-user CSV and plots here."),
    as_json: bool = JSON_OPT,
    seed: int = SEED_OPT,
    device: str = DEVICE_OPT,
    threads: int = THREADS_OPT,
    config_dir: Path = typer.Option(None, "--config-dir",
                                    help="Root of tuned configs <dir>/<dataset>/<protocol key>/<model>.json "
                                         "(default: the project's configs/tuned or $MOVIEREC_CONFIGS)."),
    rerank: str = typer.Option(None, "--rerank",
                               help="Re-rank every model's lists before measuring them: mmr:W (maximal marginal "
                                    "relevance) or calibrated:W (genre proportions of the person's history), W from "
                                    "0 (the model's order) to 1, e.g. mmr:0.3; or calibrated:W+diversity:V."),
    rerank_curve: str = typer.Option(None, "--rerank-curve",
                                     help="Trade-off curves: re-rank every model with mmr and/or calibrated "
                                          "(comma-separated; mmr:genres compares genres even for a model with "
                                          "movie vectors) at each of --curve-weights, and report NDCG against "
                                          "intra-list diversity, calibration KL and coverage (plotted with --out)."),
    curve_weights: str = typer.Option(None, "--curve-weights",
                                      help="Weights of --rerank-curve, e.g. 0,0.3,1 (default 0,0.1,0.2,0.3,0.5,0.7,1)."),
    quiet: bool = QUIET_OPT,
) -> None:
    """Compare models on one split: means, 95% CIs and significance against the best baseline."""
    from movierec.experiments import CompareSpec, compare
    from movierec.rerank import CURVE_WEIGHTS

    options = read_options(movies, user_col, item_col, rating_col, time_col, sep, rating_range)
    check_read_options(dataset, options)
    columns = [o for o in options if o != "movies"]
    if columns and data is None:
        raise ConfigError(f"{', '.join('--' + o.replace('_', '-') for o in columns)} go with --data "
                          f"(your own ratings file).")
    if "movies" in options and data is None and train is None:
        raise ConfigError("--movies goes with --data or --train and --test (your own ratings files).")
    if curve_weights is not None and not rerank_curve:
        raise ConfigError("--curve-weights goes with --rerank-curve (mmr and/or calibrated).")
    names = parse_models(models)
    # torch models train in this process alone: under torchrun, rank 0 runs the comparison
    runtime = replace(runtime_from_options(seed, device, threads), distributed=False)
    from movierec.training.distributed import is_main_process

    if not is_main_process():
        return
    spec = CompareSpec(dataset=dataset, data=data, train=train, test=test, protocol=protocol, holdout=holdout,
                       models=names, ks=parse_ks(k),
                       metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
                       relevance_threshold=parse_relevance_threshold(relevance_threshold),
                       sampled_negatives=sampled_negatives,
                       seed=seed, config_root=config_dir, params=parse_model_params(param), read_options=options,
                       rerank=rerank, rerank_curves=[n for n in (rerank_curve or "").split(",") if n.strip()],
                       curve_weights=parse_weights(curve_weights) or CURVE_WEIGHTS, runtime=runtime)
    if (dataset is None) == (data is None) and train is None and test is None:
        raise ConfigError("Give either --dataset NAME (such as ml-100k), --data PATH, or --train and --test files.")

    with Steps("compare", len(names) + 1 + bool(spec.rerank_curves), quiet=quiet) as steps, reading_data(), \
            fetch_progress(dataset or "the data", quiet) as download:  # the download shows under the steps
        def log(message: str) -> None:
            if message.startswith(("fitting", "evaluating", "trade-off")):
                steps.start(message)
            else:
                steps.note(f"[dim]{message}[/dim]")

        comp = compare(spec, log=log, download=download)
    for msg in comp.info.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {msg}")
    paths = {}
    if out_dir is not None:
        from movierec.reporting.report import write_report

        paths = write_report(comp, out_dir)
    if as_json:
        doc = comp.to_json()
        if paths:
            doc["report"] = {k_: str(v) for k_, v in paths.items()}
        print_json(doc)
        return
    from rich.table import Table

    from movierec.reporting.report import comparison_table

    frame = comparison_table(comp).T  # metrics as rows, models as columns: fits a terminal
    first = next(iter(comp.results.values()))
    thr = comp.info["relevance_threshold"]
    title = (f"protocol {protocol_label(comp.info['protocol'], comp.info.get('split'))}, "
             f"{first.info['n_evaluated_users']} test users, "
             f"relevant = {'rating >= ' + format(thr, 'g') if thr is not None else 'all'}")
    table = Table(title=title)
    table.add_column("metric", style="bold")
    for c in frame.columns:
        table.add_column(str(c), justify="right")
    for idx, row in frame.iterrows():
        table.add_row(str(idx), *[str(v) for v in row.to_list()])
    out.print(table)
    out.print(f"mean ± 95% CI half-width; +/- = significantly better/worse than {comp.reference} "
              f"(paired t-test and Wilcoxon, Holm-corrected, alpha {comp.info['alpha']}).")
    if comp.info.get("rerank"):
        out.print(f"every list re-ranked with {comp.info['rerank']}")
    for name, used in comp.info.get("models_config", {}).items():
        out.print(f"{name}: {used['params']}" + (f" (tuned: {used['config']})" if used["config"] else ""))
    if comp.info.get("rerank_curves"):
        from movierec.reporting.report import rerank_curve_table

        curve = Table(title="re-ranking trade-off (weight 0: the model's own list)")
        frame = rerank_curve_table(comp).reset_index()
        for c in frame.columns:
            curve.add_column(str(c), justify="left" if c in ("model", "rerank") else "right")
        for row in frame.itertuples(index=False):
            curve.add_row(*[f"{v:.4f}" if isinstance(v, float) and c not in ("weight",) else
                            (f"{v:g}" if isinstance(v, float) else str(v)) for c, v in zip(frame.columns, row)])
        out.print(curve)
    for key in ("report", "metric_bars", "recall_curves", "coverage_vs_accuracy", "rerank_curves"):
        if key in paths:
            out.print(f"{key}: {paths[key]}")
