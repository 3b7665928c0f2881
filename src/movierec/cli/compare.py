"""`movierec compare`: fit several models on one leak-free split and compare them.

Every model is fitted on the same train part (validation passed for early stopping),
evaluated on the same test users with the same candidates, and tested against the best
baseline (paired t-test + Wilcoxon, Holm-corrected) with bootstrap 95% CIs.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import typer

from movierec.cli import app
from movierec.cli.common import DATA_OPT, DATASET_OPT, console, load_dataset, out, print_json
from movierec.errors import ConfigError

DEFAULT_CONFIG_DIR = Path("configs/tuned")


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
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        raise ConfigError("--models needs at least one model name, e.g. --models random,pop.")
    if len(set(names)) != len(names):
        raise ConfigError(f"--models lists a model twice: {value!r}.")
    return names


def parse_threshold(value: str | None, ds) -> float | None:
    """None -> the dataset default; 'none' -> every test item relevant; else a number."""
    from movierec.evaluation.protocols import default_relevance_threshold

    if value is None or str(value).lower() == "auto":
        return default_relevance_threshold(ds)
    if str(value).lower() in ("none", "off", "all"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--relevance-threshold takes a number, 'auto' or 'none'; got {value!r}.") from None


PROTOCOL_FOLDERS = {"leave-last": ("leave-last", "loo"), "temporal": ("temporal",), "random": ("random",),
                    "files": ("files",)}


def tuned_params(name: str, config_dir: Path | None, dataset: str | None = None,
                 protocol: str | None = None, holdout: float | None = None) -> tuple[dict, Path | None]:
    """Hyperparameters from a tuned config ({"params": {...}}), the most specific found of
    `<config_dir>/<dataset>/<protocol>/<name>.json` (leave-last also as `loo`; leave-last
    with a fractional holdout such as 0.2 as `last20`),
    `<config_dir>/<dataset>/<name>.json` and `<config_dir>/<name>.json`."""
    if config_dir is None:
        return {}, None
    root = Path(config_dir)
    options = []
    if dataset:
        folders = PROTOCOL_FOLDERS.get(protocol or "", (protocol,) if protocol else ())
        if protocol == "leave-last" and holdout is not None and not float(holdout).is_integer():
            # the per-user last-fraction protocol: tuned configs live under last<percent>
            folders = (f"last{round(float(holdout) * 100)}",)
        for folder in folders:
            options.append(root / dataset / folder / f"{name}.json")
        options.append(root / dataset / f"{name}.json")
    options.append(root / f"{name}.json")
    path = next((p for p in options if p.is_file()), None)
    if path is None:
        return {}, None
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Tuned config {path} is not valid JSON ({exc}); fix or remove it.") from None
    params = doc.get("params") if isinstance(doc, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"Tuned config {path} must be a JSON object with a \"params\" object.")
    return params, path


def resolve_models(names: list[str]) -> dict[str, type]:
    """name -> class for every requested model, or a ConfigError naming the bad one."""
    from movierec.models.registry import available, get_class

    classes = {}
    for name in names:
        try:
            classes[name] = get_class(name)
        except ImportError as exc:
            raise ConfigError(
                f"Model {name!r} is registered but cannot be imported ({exc}); choose another of: "
                f"{', '.join(available())}."
            ) from None
    return classes


def build_models(names: list[str], seed: int, config_dir: Path | None, dataset: str | None = None,
                 protocol: str | None = None, holdout: float | None = None) -> tuple[dict, dict]:
    """Unfitted models (tuned params applied, seed set where the model takes one)."""
    from movierec.models.registry import create

    resolve_models(names)
    models, used = {}, {}
    for name in names:
        params, path = tuned_params(name, config_dir, dataset, protocol, holdout)
        model = create(name, **params)
        if "seed" in model.get_params() and "seed" not in params:
            model.set_params(seed=seed)
        models[name] = model
        used[name] = {"params": model.get_params(), "config": str(path) if path else None}
    return models, used


def run_compare(
    dataset: str | None = None,
    data: Path | None = None,
    train: Path | None = None,
    test: Path | None = None,
    protocol: str = "temporal",
    holdout: float | None = None,
    models: str = "random,pop",
    k: str = "10",
    relevance_threshold: str | None = None,
    metrics: str | None = None,
    sampled_negatives: int = 0,
    seed: int = 42,
    config_dir: Path | None = DEFAULT_CONFIG_DIR,
    log=None,
):
    """The work of `movierec compare`, returning (Comparison, messages). `log(str)` gets progress lines."""
    from movierec.evaluation.protocols import (
        SampledEvaluationWarning,
        build_split,
        files_protocol,
        sample_negatives,
        split_summary,
    )
    from movierec.evaluation.runner import ALL_METRICS, compare_models

    log = log or (lambda msg: None)
    names = parse_models(models)
    ks = parse_ks(k)
    metric_list = None
    if metrics:
        metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
        bad = sorted(set(metric_list) - set(ALL_METRICS))
        if bad:
            raise ConfigError(f"Unknown metric(s) {', '.join(bad)}; choose from: {', '.join(ALL_METRICS)}.")
    resolve_models(names)  # fail fast, before loading data
    if (train is None) != (test is None):
        raise ConfigError("Give both --train and --test files (or neither).")
    if train is not None:
        if dataset is not None or data is not None:
            raise ConfigError("--train/--test files replace --dataset/--data; give one or the other.")
        split = files_protocol(train, test)
        protocol_name = "files"
    else:
        ds = load_dataset(dataset, data)
        split = build_split(ds, protocol, holdout=holdout, seed=seed)
        protocol_name = protocol
    summary = split_summary(split)
    dropped = summary.get("dropped", {})
    if dropped.get("test_unseen_users"):
        log(f"dropped {dropped['test_unseen_users']} test users with no training history "
            f"({dropped['test_unseen_user_ratings']} ratings)")
    threshold = parse_threshold(relevance_threshold, split.train)
    history = split.train_full()
    candidates = None
    messages = []
    if sampled_negatives:
        from movierec.config import cache_dir

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SampledEvaluationWarning)
            candidates = sample_negatives(history, split.test, n_negatives=sampled_negatives, seed=seed,
                                          cache_dir=cache_dir() / "negatives")
        messages += [str(w.message) for w in caught if issubclass(w.category, SampledEvaluationWarning)]

    built, used = build_models(names, seed, config_dir, dataset, protocol_name, holdout)
    fitted, timing = {}, {}
    for name, model in built.items():
        log(f"fitting {name} ...")
        t0 = time.perf_counter()
        # hyperparameters come from validation (tuned configs); the test run fits on
        # train + validation, so no model loses the interactions just before the test period
        model.fit(history)
        timing[name] = {"fit_s": time.perf_counter() - t0}
        fitted[name] = model
    info = {"protocol": protocol_name, "split": summary, "timing": timing, "models_config": used,
            "sampled_negatives": sampled_negatives or None}
    log("evaluating ...")
    comp = compare_models(fitted, history, split.test, ks=ks, metrics=metric_list,
                          relevance_threshold=threshold, candidates=candidates, seed=seed, info=info)
    return comp, messages


@app.command("compare")
def compare_cmd(
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    train: Path = typer.Option(None, "--train", help="Explicit training file (with --test; no split is made)."),
    test: Path = typer.Option(None, "--test", help="Explicit test file (with --train)."),
    protocol: str = typer.Option("temporal", "--protocol", "-p",
                                 help="temporal (global 80/10/10 in time), leave-last (per user) or random."),
    holdout: float = typer.Option(None, "--holdout",
                                  help="leave-last: 1 = last item, 0.2 = each user's last 20%; temporal/random: test share (0.1)."),
    models: str = typer.Option("random,pop", "--models", "-m", help="Comma-separated model names, e.g. random,pop,mf."),
    k: str = typer.Option("10", "-k", help="Cut-offs, e.g. 10,20."),
    relevance_threshold: str = typer.Option(
        None, "--relevance-threshold",
        help="Test ratings >= this are relevant. Default: 4 on a 1-5 scale (low + 0.75 x range); 'none' = all."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the standard set)."),
    sampled_negatives: int = typer.Option(0, "--sampled-negatives",
                                          help="Rank among N sampled negatives instead of all movies (not recommended)."),
    out_dir: Path = typer.Option(None, "--out", help="Write report.md, results.json, per-user CSV and plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    seed: int = typer.Option(42, "--seed", help="Seed for the split, the models and the bootstrap."),
    config_dir: Path = typer.Option(DEFAULT_CONFIG_DIR, "--config-dir",
                                    help="Tuned configs {\"params\": {...}}: <dir>/<dataset>/<protocol>/<model>.json, <dir>/<dataset>/<model>.json or <dir>/<model>.json."),
) -> None:
    """Compare models on one split: means, 95% CIs and significance against the best baseline."""
    from movierec.evaluation.report import comparison_table, write_report

    comp, messages = run_compare(dataset=dataset, data=data, train=train, test=test, protocol=protocol,
                                 holdout=holdout, models=models, k=k, relevance_threshold=relevance_threshold,
                                 metrics=metrics, sampled_negatives=sampled_negatives, seed=seed,
                                 config_dir=config_dir, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    for msg in messages:
        console.print(f"[yellow]warning:[/yellow] {msg}")
    paths = {}
    if out_dir is not None:
        paths = write_report(comp, out_dir)
    if as_json:
        doc = comp.to_json()
        if paths:
            doc["report"] = {k_: str(v) for k_, v in paths.items()}
        print_json(doc)
        return
    from rich.table import Table

    frame = comparison_table(comp).T  # metrics as rows, models as columns: fits a terminal
    first = next(iter(comp.results.values()))
    thr = comp.info["relevance_threshold"]
    title = (f"{comp.info['protocol']} protocol, {first.info['n_evaluated_users']} test users, "
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
    for key in ("report", "metric_bars", "recall_curves", "coverage_vs_accuracy"):
        if key in paths:
            out.print(f"{key}: {paths[key]}")
