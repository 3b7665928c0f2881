"""Comparison tables, Markdown reports and PNG plots of a `runner.Comparison`.

matplotlib is imported by the plot functions only (through `movierec.reporting.viz`), so
the tables (`comparison_table`, used by `movierec compare` without a report folder) do
not pay for it. Every plot title names the dataset and the protocol.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.evaluation.protocols import protocol_label
from movierec.evaluation.runner import Comparison
from movierec.jsonable import json_default_finite

#: metric order in tables (per K)
TABLE_METRICS = ("ndcg", "recall", "precision", "hr", "map", "mrr", "recall_capped", "ndcg_graded",
                 "coverage", "gini", "novelty", "diversity_genre", "diversity_emb", "calibration_kl", "long_tail")
ACCURACY = ("ndcg", "recall", "precision", "hr", "map", "mrr", "recall_capped", "ndcg_graded")


def table_columns(comp: Comparison, accuracy_only: bool = False) -> list[str]:
    """The summary keys to show, ordered by metric then K."""
    keys = list(next(iter(comp.results.values())).summary)
    out = []
    for m in TABLE_METRICS:
        if accuracy_only and m not in ACCURACY:
            continue
        for k in comp.info.get("ks", []):
            if f"{m}@{k}" in keys:
                out.append(f"{m}@{k}")
    return out


def _mark(comp: Comparison, model: str, metric: str) -> str:
    """'+' significantly better than the reference, '-' significantly worse, '' else."""
    if model == comp.reference:
        return ""
    sig = comp.significance
    row = sig[(sig["model"] == model) & (sig["metric"] == metric)]
    if row.empty or not bool(row["significant"].iloc[0]):
        return ""
    return "+" if bool(row["better"].iloc[0]) else "-"


def comparison_table(comp: Comparison, columns: list[str] | None = None) -> pd.DataFrame:
    """models x metrics of strings "mean ± CI half-width" plus a significance mark
    ('+' / '-': significantly better / worse than the reference, Holm-corrected paired
    t-test and Wilcoxon both at alpha). Catalog metrics (coverage, Gini) have no CI."""
    columns = columns or table_columns(comp)
    rows = {}
    for name, res in comp.results.items():
        cells = {}
        for c in columns:
            mean = res.summary.get(c, np.nan)
            ci = comp.ci.get(name, {}).get(c)
            if ci is not None and np.all(np.isfinite(ci)):
                half = (ci[1] - ci[0]) / 2
                cell = f"{mean:.4f} ± {half:.4f}"
            else:
                cell = f"{mean:.4f}" if np.isfinite(mean) else "n/a"
            cells[c] = cell + _mark(comp, name, c)
        label = f"{name} (ref)" if name == comp.reference else name
        rows[label] = cells
    return pd.DataFrame(rows).T[columns]


def _markdown(frame: pd.DataFrame, index_name: str = "model") -> str:
    cols = [index_name] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.to_list()]) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# plots


def comparison_context(comp: Comparison) -> tuple[str | None, str | None]:
    """(dataset, protocol label) of a comparison, for plot titles."""
    info = comp.info
    return info.get("dataset"), protocol_label(info.get("protocol"), info.get("split"))


def _title(comp: Comparison, main: str):
    from movierec.reporting.viz import plot_title

    dataset, protocol = comparison_context(comp)
    return plot_title(main, dataset or "own data", protocol)


def metric_bars_figure(comp: Comparison, metrics: list[str] | None = None):
    """Grouped bars: one group per metric, one bar per model, 95% bootstrap CI whiskers."""
    from movierec.reporting.viz import plt  # pyplot on the Agg backend

    metrics = metrics or table_columns(comp, accuracy_only=True)
    names = list(comp.results)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(metrics) + 2), 4), layout="constrained")
    x = np.arange(len(metrics))
    for j, name in enumerate(names):
        means = np.array([comp.results[name].summary.get(m, np.nan) for m in metrics])
        lo = np.array([comp.ci.get(name, {}).get(m, [np.nan, np.nan])[0] for m in metrics])
        hi = np.array([comp.ci.get(name, {}).get(m, [np.nan, np.nan])[1] for m in metrics])
        err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)])
        ax.bar(x + (j - (len(names) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, metrics, rotation=30, ha="right")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("mean over test users")
    ax.set_title(_title(comp, "Ranking accuracy with 95% bootstrap CIs"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never covers a bar
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_metric_bars(comp: Comparison, path: Path, metrics: list[str] | None = None) -> Path:
    """Grouped bars: one group per metric, one bar per model, 95% bootstrap CI whiskers."""
    from movierec.reporting.viz import save_figure

    return save_figure(metric_bars_figure(comp, metrics), path)


def recall_curves_figure(comp: Comparison, metric: str = "recall"):
    """metric@K against K for every model (one line per model)."""
    from movierec.reporting.viz import plt  # pyplot on the Agg backend

    ks = comp.info.get("ks", [])
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name, res in comp.results.items():
        ys = [res.summary.get(f"{metric}@{k}", np.nan) for k in ks]
        ax.plot(ks, ys, marker="o", label=name)
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.set_ylim(bottom=0)
    ax.set_title(_title(comp, f"{metric}@K curves"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_recall_curves(comp: Comparison, path: Path, metric: str = "recall") -> Path:
    """metric@K against K for every model (one line per model)."""
    from movierec.reporting.viz import save_figure

    return save_figure(recall_curves_figure(comp, metric), path)


def coverage_vs_accuracy_figure(comp: Comparison):
    """Catalog coverage@K (x) against the primary accuracy metric (y), one labelled point
    per model; labels are placed so that none overlaps another or leaves the axes."""
    from movierec.reporting.viz import place_labels, plt

    k = comp.primary.split("@")[-1]
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    names = list(comp.results)
    xs = np.array([comp.results[n].summary.get(f"coverage@{k}", np.nan) for n in names], dtype=float)
    ys = np.array([comp.results[n].summary.get(comp.primary, np.nan) for n in names], dtype=float)
    cmap = plt.get_cmap("tab10")
    for j, (x, y) in enumerate(zip(xs, ys)):
        ax.scatter([x], [y], s=60, color=cmap(j % 10), zorder=3)
    finite_x, finite_y = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    # room around the points for their labels; both axes from zero (shares and accuracies)
    x_hi = max(float(finite_x.max()) if len(finite_x) else 1.0, 1e-3)
    y_hi = max(float(finite_y.max()) if len(finite_y) else 1.0, 1e-3)
    ax.set_xlim(-0.08 * x_hi, 1.25 * x_hi)
    ax.set_ylim(-0.08 * y_hi, 1.25 * y_hi)
    ax.set_xlabel(f"catalog coverage@{k}")
    ax.set_ylabel(comp.primary)
    ax.set_title(_title(comp, "Coverage vs accuracy"))
    ax.grid(alpha=0.3)
    place_labels(ax, xs, ys, names)
    return fig


def plot_coverage_vs_accuracy(comp: Comparison, path: Path) -> Path:
    """Catalog coverage@K (x) against the primary accuracy metric (y), one point per model."""
    from movierec.reporting.viz import save_figure

    return save_figure(coverage_vs_accuracy_figure(comp), path)


#: the x axes of the re-ranking trade-off curves: (metric, axis label)
CURVE_AXES = (("diversity_genre", "intra-list diversity (genres)"),
              ("calibration_kl", "calibration KL (lower: calibrated)"), ("coverage", "catalog coverage"))


def rerank_curves_figure(comp: Comparison):
    """Re-ranking trade-off curves (`Comparison.info["rerank_curves"]`): NDCG@K (y) against
    intra-list diversity, calibration KL and coverage (x, one panel each), one line per
    model and re-ranker through its weights (weight 0, the model's own list, ringed; the
    largest weight labelled)."""
    from movierec.reporting.viz import plt

    curves = comp.info["rerank_curves"]
    k = curves["k"]
    frame = pd.DataFrame(curves["points"])
    fig, axes = plt.subplots(1, len(CURVE_AXES), figsize=(5 * len(CURVE_AXES), 4.4), layout="constrained")
    cmap = plt.get_cmap("tab10")
    lines = list(frame.groupby(["model", "rerank"], sort=False))
    for ax, (metric, label) in zip(axes, CURVE_AXES):
        for j, ((model, rerank), part) in enumerate(lines):
            part = part.sort_values("weight")
            xs = part[f"{metric}@{k}"].to_numpy(dtype=float)
            ys = part[f"ndcg@{k}"].to_numpy(dtype=float)
            style = "-" if str(rerank).startswith("mmr") else "--"
            ax.plot(xs, ys, style, marker="o", ms=4, color=cmap(j % 10), label=f"{model} + {rerank}")
            ax.scatter(xs[:1], ys[:1], s=90, facecolors="none", edgecolors=cmap(j % 10), zorder=3)
            ax.annotate(f"w={part['weight'].iloc[-1]:g}", (xs[-1], ys[-1]), xytext=(4, 4), textcoords="offset points",
                        fontsize=8, color=cmap(j % 10))
        ax.set_xlabel(f"{label} @{k}")
        ax.set_ylabel(f"ndcg@{k}")
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: never covers a point
    weights = ", ".join(f"{w:g}" for w in sorted(set(frame["weight"])))
    fig.suptitle(_title(comp, f"Re-ranking trade-off (weights {weights}; ringed: weight 0)"))
    return fig


def plot_rerank_curves(comp: Comparison, path: Path) -> Path:
    """Re-ranking trade-off curves (see `rerank_curves_figure`) as a PNG."""
    from movierec.reporting.viz import save_figure

    return save_figure(rerank_curves_figure(comp), path)


def rerank_curve_table(comp: Comparison) -> pd.DataFrame:
    """The trade-off curves as a table: one row per model, re-ranker and weight."""
    curves = comp.info["rerank_curves"]
    frame = pd.DataFrame(curves["points"])
    return frame.set_index(["model", "rerank", "weight"])[curves["metrics"]]


#: features shown per ranker in the report's importance table and plot (the largest gains)
IMPORTANCE_TOP = 15


def feature_importance_table(comp: Comparison) -> pd.DataFrame:
    """The rankers' LightGBM feature importance (`Comparison.info["feature_importance"]`,
    recorded by `compare` for every `ranker` compared): one row per model and feature,
    with its total gain and its share of the model's gain, largest first per model."""
    rows = []
    for model, gains in comp.info.get("feature_importance", {}).items():
        total = sum(gains.values())
        ranked = sorted(gains.items(), key=lambda kv: -kv[1])
        rows += [{"model": model, "feature": name, "gain": float(gain),
                  "share": float(gain) / total if total > 0 else 0.0} for name, gain in ranked]
    return pd.DataFrame(rows, columns=["model", "feature", "gain", "share"])


def feature_importance_figure(comp: Comparison, top: int = IMPORTANCE_TOP):
    """Horizontal bars of each ranker's `top` features by share of LightGBM gain (one panel per ranker)."""
    from movierec.reporting.viz import plt

    table = feature_importance_table(comp)
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 0.32 * top + 1.6), squeeze=False,
                             layout="constrained")
    for ax, model in zip(axes[0], models):
        part = table[table["model"] == model].head(top)
        ax.barh(range(len(part)), part["share"], color="#4c72b0")
        ax.set_yticks(range(len(part)), part["feature"], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("share of total gain")
        ax.set_title(model, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(_title(comp, "Ranker: LightGBM feature importance (gain)"))
    return fig


def plot_feature_importance(comp: Comparison, path: Path, top: int = IMPORTANCE_TOP) -> Path:
    """The rankers' feature importance (see `feature_importance_figure`) as a PNG."""
    from movierec.reporting.viz import save_figure

    return save_figure(feature_importance_figure(comp, top), path)


# --------------------------------------------------------------------------------------
# the report folder


def write_report(comp: Comparison, folder: str | Path, title: str = "movierec comparison") -> dict[str, Path]:
    """Write report.md, results.json, per_user.csv, significance.csv and PNG plots.

    Returns:
        name -> written path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["metric_bars"] = plot_metric_bars(comp, folder / "metric_bars.png")
    paths["recall_curves"] = plot_recall_curves(comp, folder / "recall_at_k.png")
    paths["coverage_vs_accuracy"] = plot_coverage_vs_accuracy(comp, folder / "coverage_vs_accuracy.png")
    if comp.info.get("rerank_curves"):
        paths["rerank_curves"] = plot_rerank_curves(comp, folder / "rerank_curves.png")
    if comp.info.get("feature_importance"):
        paths["feature_importance"] = plot_feature_importance(comp, folder / "feature_importance.png")

    long = pd.concat({n: r.per_user for n, r in comp.results.items()}, names=["model"]).reset_index()
    long.to_csv(folder / "per_user.csv", index=False)
    paths["per_user"] = folder / "per_user.csv"
    comp.significance.to_csv(folder / "significance.csv", index=False)
    paths["significance"] = folder / "significance.csv"
    (folder / "results.json").write_text(json.dumps(comp.to_json(), indent=2, default=json_default_finite))
    paths["results"] = folder / "results.json"

    info = comp.info
    split = info.get("split", {})
    lines = [f"# {title}", ""]
    lines.append(f"- protocol: **{protocol_label(info.get('protocol'), split)}**; "
                 f"cut-offs K = {', '.join(map(str, info.get('ks', [])))}")
    thr = info.get("relevance_threshold")
    lines.append(f"- relevant test items: {'rating >= ' + format(thr, 'g') if thr is not None else 'every test interaction'}")
    lines.append(f"- candidates: {info.get('candidates', 'full')} ranking; each user's train(+validation) items excluded")
    if info.get("rerank"):
        lines.append(f"- re-ranked: every list is `{info['rerank']}` over the model's longer candidate list")
    if split:
        lines.append(
            f"- split: train {split.get('n_train', '?'):,} / validation {split.get('n_validation', 0):,} / "
            f"test {split.get('n_test', '?'):,} interactions; test users {split.get('n_test_users', '?')}"
        )
        dropped = split.get("dropped")
        if dropped:
            lines.append(
                f"- dropped (never seen in train): {dropped.get('test_unseen_users', 0)} test users "
                f"({dropped.get('test_unseen_user_ratings', 0)} ratings), {dropped.get('test_unseen_items', 0)} test movies "
                f"({dropped.get('test_unseen_item_ratings', 0)} ratings)"
            )
    first = next(iter(comp.results.values()))
    lines.append(
        f"- evaluated users: {first.info['n_evaluated_users']} "
        f"({first.info['n_users_without_relevant']} test users had no relevant test item)"
    )
    lines += ["", "## Results", "",
              f"Mean ± half-width of the 95% bootstrap CI over users. Reference for significance: "
              f"**{comp.reference}** (best baseline by {comp.primary}). `+` / `-`: significantly better / "
              f"worse than the reference (paired t-test and Wilcoxon signed-rank, both Holm-corrected, "
              f"alpha = {info.get('alpha', 0.05)}).", ""]
    lines.append(_markdown(comparison_table(comp)))
    lines += ["", "## Significance against the reference", ""]
    sig = comp.significance
    acc = set(table_columns(comp, accuracy_only=True))
    sig_acc = sig[sig["metric"].isin(acc)] if not sig.empty else sig
    if sig_acc.empty:
        lines.append("(only one model: nothing to compare)")
    else:
        show = sig_acc[["model", "metric", "diff", "n_users", "p_t_holm", "p_w_holm", "significant"]].copy()
        show["diff"] = show["diff"].map(lambda v: f"{v:+.4f}")
        for c in ("p_t_holm", "p_w_holm"):
            show[c] = show[c].map(lambda v: f"{v:.2g}" if np.isfinite(v) else "n/a")
        lines.append(_markdown(show.set_index("model"), "model"))
    lines += ["", "## By user stratum (training-history length)", ""]
    pk = comp.primary
    strat = pd.DataFrame({n: r.by_stratum()[pk] for n, r in comp.results.items() if pk in r.per_user})
    counts = first.by_stratum()["n_users"]
    strat.insert(0, "n_users", counts)
    lines.append(f"{pk} per stratum (cold < {info.get('strata', (10, 100))[0]} training interactions <= warm "
                 f"< {info.get('strata', (10, 100))[1]} <= heavy):")
    lines.append("")
    lines.append(_markdown(strat.map(lambda v: f"{v:.4f}" if isinstance(v, float) else v), "stratum"))
    used = info.get("models_config", {})
    if used:
        lines += ["", "## Models and hyperparameters", ""]
        if info.get("config_root"):
            lines.append(f"Tuned configurations looked up under `{info['config_root']}`.")
            lines.append("")
        lines += ["| model | tuned config | hyperparameters |", "|---|---|---|"]
        for name, u in used.items():
            params = ", ".join(f"{k}={v!r}" for k, v in u.get("params", {}).items())
            lines.append(f"| {name} | {u.get('config') or '(defaults)'} | {params} |")
    for note in info.get("notes", []) + info.get("warnings", []):
        lines += ["", f"> {note}"]
    if info.get("rerank_curves"):
        table = rerank_curve_table(comp).reset_index()
        table["weight"] = table["weight"].map(lambda v: f"{v:g}")
        lines += ["", "## Re-ranking trade-off", "",
                  "Every model re-ranked at each weight (0: the model's own list); intra-list diversity by genres, "
                  "calibration KL against the user's training history (lower: calibrated), catalog coverage.", ""]
        lines.append(_markdown(table.set_index("model").map(lambda v: f"{v:.4f}" if isinstance(v, float) else v)))
    if info.get("feature_importance"):
        table = feature_importance_table(comp)
        table = table.groupby("model", sort=False).head(IMPORTANCE_TOP)
        table["gain"] = table["gain"].map(lambda v: f"{v:,.1f}")
        table["share"] = table["share"].map(lambda v: f"{v:.1%}")
        lines += ["", "## Ranker feature importance", "",
                  f"What the ranker's LightGBM second stage split on: total gain per feature and its share of the "
                  f"model's gain (the {IMPORTANCE_TOP} largest per ranker; `gK_<model>_score/rank/gap`: generator "
                  "K's score, rank and distance from its top score).", ""]
        lines.append(_markdown(table.set_index("model")))
    timing = info.get("timing", {})
    if timing:
        lines += ["", "## Timing", ""]
        tf = pd.DataFrame(timing).T.map(lambda v: f"{v:.2f} s")
        lines.append(_markdown(tf))
    lines += ["", "## Plots", ""]
    for key in ("metric_bars", "recall_curves", "coverage_vs_accuracy", "rerank_curves", "feature_importance"):
        if key in paths:
            lines.append(f"![{key}]({paths[key].name})")
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    paths["report"] = folder / "report.md"
    return paths
