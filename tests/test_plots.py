"""Plot polish (issue 9): dataset and protocol in every title, the ratings-over-time axis
from zero, the t-SNE title counting exactly the points drawn, and point labels that
neither overlap nor leave the figure. Figures are built on the real ML-100K and checked
through matplotlib's own layout (`fig.canvas.draw()`, `get_window_extent()`)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from movierec.reporting import report, viz


@pytest.fixture(scope="module")
def comparison(ml100k):
    from movierec.experiments import CompareSpec, compare

    return compare(CompareSpec(dataset=ml100k, protocol="leave-last", holdout=1,
                               models=("random", "pop", "pop-recent", "bias"), ks=(10, 20)))


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _boxes_ok(fig, texts) -> None:
    """No two texts overlap; every text lies inside the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    outer = fig.bbox
    for t, box in zip(texts, boxes):
        assert outer.x0 <= box.x0 and box.x1 <= outer.x1 and outer.y0 <= box.y0 and box.y1 <= outer.y1, t.get_text()


def test_comparison_plots_name_dataset_and_protocol(comparison):
    for build in (report.metric_bars_figure, report.recall_curves_figure, report.coverage_vs_accuracy_figure):
        fig = build(comparison)
        (title,) = _titles(fig)
        assert "ml-100k" in title and "leave-last (last item per user)" in title, (build.__name__, title)
        viz.plt.close(fig)


def test_protocol_label_states_the_test_amount():
    assert viz.protocol_label("leave-last", {"holdout": 1}) == "leave-last (last item per user)"
    assert viz.protocol_label("leave-last", {"holdout": 0.2}) == "leave-last (last 20% per user)"
    assert viz.protocol_label("temporal", {"holdout": 0.1}) == "temporal (test 10%)"
    assert viz.protocol_label("ml100k-folds", {}) == "ml100k-folds"


def test_coverage_vs_accuracy_labels_do_not_overlap_or_leave_the_figure(comparison):
    fig = report.coverage_vs_accuracy_figure(comparison)
    ax = fig.axes[0]
    labels = [t for t in ax.texts]
    assert sorted(t.get_text() for t in labels) == sorted(comparison.results)
    _boxes_ok(fig, labels + [ax.title])
    viz.plt.close(fig)


def test_place_labels_separates_crowded_points():
    """Six models within a hair of each other, one at the right edge: every label is
    placed apart from the others and inside the axes."""
    fig, ax = viz.plt.subplots(figsize=(6, 4))
    xs = np.array([0.30, 0.301, 0.302, 0.30, 0.299, 0.98])
    ys = np.array([0.050, 0.0505, 0.051, 0.0495, 0.0502, 0.02])
    ax.scatter(xs, ys)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 0.1)
    texts = viz.place_labels(ax, xs, ys, ["item-knn", "ease", "seq-ease", "mf-rank", "neumf", "random"])
    _boxes_ok(fig, texts)
    inside = ax.get_window_extent()
    for t in texts:
        box = t.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    viz.plt.close(fig)


def test_dataset_plots_name_the_dataset_and_count_from_zero(ml100k):
    for build in (viz.rating_distribution_figure, viz.long_tail_figure, viz.ratings_over_time_figure):
        fig = build(ml100k, subtitle="all ratings")
        (title,) = _titles(fig)
        assert "ml-100k" in title and "all ratings" in title
        texts = [t for t in fig.axes[0].texts]
        if texts:
            _boxes_ok(fig, texts + [fig.axes[0].title])
        if build is viz.ratings_over_time_figure:
            assert fig.axes[0].get_ylim()[0] == 0
            counts = fig.axes[0].lines[0].get_ydata()
            assert counts.sum() == ml100k.n_ratings
        viz.plt.close(fig)


def test_learning_curve_title_names_the_dataset():
    records = [{"epoch": e, "train_loss": 1.0 / e, "train_rmse": 1.0 / e, "val": 1.0 + 0.1 / e} for e in (1, 2, 3)]
    fig = viz.learning_curve_figure(records, "mf: learning curve", dataset="ml-100k")
    (title,) = _titles(fig)
    assert title.startswith("mf: learning curve") and "ml-100k" in title
    viz.plt.close(fig)


def test_tsne_title_counts_the_points_drawn(ml100k):
    from movierec.models import create

    model = create("mf", epochs=2, patience=0, dim=8).fit(ml100k)
    coords, keep, genres = viz.item_embedding_map(model, ml100k.catalog, min_ratings=100)
    fig = viz.item_embedding_map_figure(coords, genres, model.name, 100, dataset="ml-100k")
    drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    expected = int((ml100k.item_counts() >= 100).sum())
    (title,) = _titles(fig)
    assert drawn == len(keep) == expected
    assert re.search(r"\b(\d+) movies with 100\+ ratings", title).group(1) == str(drawn)
    assert "ml-100k" in title
    viz.plt.close(fig)
