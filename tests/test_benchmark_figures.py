"""BENCHMARKS.md and README.md figures agree with the benchmark results files.

Every figure a benchmark produces lives in a `<!-- figures:NAME -->` region that
`benchmarks/render.py` renders from `benchmarks/results/*.json`. The first test is the
check itself: it fails as soon as the prose and the results disagree (after a benchmark
rerun, run `.venv/bin/python benchmarks/render.py` to rewrite the regions). The others
plant a disagreement in a copy and show that the check sees it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))  # the benchmark scripts import `render` as a sibling
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


render = _load("render")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the two Markdown files and the results folder, to plant changes in."""
    for name in ("BENCHMARKS.md", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(BENCH / "results", tmp_path / "benchmarks" / "results")
    return tmp_path


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_prose_agrees_with_results():
    problems = render.check(ROOT)
    assert problems == [], "run `.venv/bin/python benchmarks/render.py` after a benchmark run:\n" + "\n".join(problems)


def test_every_registered_region_is_in_its_file():
    # the check would be vacuous for a file that lost its markers; it reports them as missing
    for filename, renderers in render.REGIONS.items():
        text = (ROOT / filename).read_text()
        for name in renderers:
            assert f"<!-- figures:{name} -->" in text and f"<!-- /figures:{name} -->" in text, (filename, name)


def test_a_changed_result_is_caught_and_rendered(tree: Path):
    results = tree / "benchmarks" / "results" / "explicit_ml100k.json"
    _edit_json(results, lambda d: d["figures"]["summary"]["mf"].update(rmse=0.9151))
    problems = render.check(tree)
    assert "README.md: region readme-explicit differs from its results" in problems
    assert "BENCHMARKS.md: region explicit differs from its results" in problems
    assert "BENCHMARKS.md: region explicit-mf differs from its results" in problems
    assert len(problems) == 3, problems
    # rendering rewrites exactly those regions, and then the check passes
    before = (tree / "BENCHMARKS.md").read_text()
    render.render_files(tree, write=True)
    assert render.check(tree) == []
    readme = (tree / "README.md").read_text()
    assert "`mf` 0.9151 (tuned 0.9134)" in readme and "0.9153" not in readme
    after = (tree / "BENCHMARKS.md").read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [
        ("| mf | 0.9153 | 0.7206 | 0.4 | 0.9264 | 0.9170 | 0.9115 | 0.9093 | 0.9121 |",
         "| mf | 0.9151 | 0.7206 | 0.4 | 0.9264 | 0.9170 | 0.9115 | 0.9093 | 0.9121 |"),
        ("<!-- figures:explicit-mf -->Default `mf` (dim 32) lands at 0.9153,",
         "<!-- figures:explicit-mf -->Default `mf` (dim 32) lands at 0.9151,"),
    ]


def test_a_changed_figure_in_the_text_is_caught(tree: Path):
    path = tree / "BENCHMARKS.md"
    text = path.read_text()
    # the data-load table's ml-25m row, its seconds cell changed by 0.01
    row = next(line for line in text.splitlines() if line.startswith("| movierec `read_ratings(ml-25m)`"))
    cells = row.split(" | ")
    cells[1] = f"{float(cells[1]) + 0.01:.2f}"
    assert text.count(row) == 1
    path.write_text(text.replace(row, " | ".join(cells)))
    assert render.check(tree) == ["BENCHMARKS.md: region data-load differs from its results"]
    render.render_files(tree, write=True)
    assert path.read_text() == text


def test_a_changed_topk_result_is_caught(tree: Path):
    # benchmarks/topk.py's own results format: one NDCG@10 feeds the summary, the full
    # table and README's headline
    results = tree / "benchmarks" / "results" / "topk.json"

    def edit(d):
        row = next(r for r in d["results"][1]["table"] if r["model"] == "seq-ease")
        row["ndcg@10"] = 0.2100

    _edit_json(results, edit)
    assert sorted(render.check(tree)) == [
        "BENCHMARKS.md: region topk-full differs from its results",
        "BENCHMARKS.md: region topk-summary differs from its results",
        "README.md: region readme-topk differs from its results",
    ]


def test_lost_unknown_or_unpaired_markers_are_reported(tree: Path):
    path = tree / "BENCHMARKS.md"
    text = path.read_text()
    text = text.replace("<!-- figures:topk-full -->", "").replace("<!-- /figures:topk-full -->", "")
    text = text.replace("<!-- /figures:neural-ranking -->", "")
    text += "\n<!-- figures:made-up -->x<!-- /figures:made-up -->\n"
    path.write_text(text)
    assert sorted(render.check(tree)) == [
        "BENCHMARKS.md: marker neural-ranking is not closed (or closed without opening)",
        "BENCHMARKS.md: region made-up has no renderer in benchmarks/render.py",
        "BENCHMARKS.md: region neural-ranking is missing (no <!-- figures:neural-ranking --> markers)",
        "BENCHMARKS.md: region topk-full is missing (no <!-- figures:topk-full --> markers)",
    ]


def test_a_missing_results_file_is_reported(tree: Path):
    (tree / "benchmarks" / "results" / "data_load.json").unlink()
    (problem,) = render.check(tree)
    assert problem.startswith("BENCHMARKS.md: region data-load cannot be rendered") and "data_load.json" in problem


def test_topk_full_tables_are_topk_markdown():
    """The rendered full tables are exactly what benchmarks/topk.py prints for each result."""
    topk = _load("topk")
    results = json.loads((BENCH / "results" / "topk.json").read_text())["results"]
    assert len(results) == 4
    for result in results:
        assert render.topk_full_table(result) == topk.markdown(result).rstrip("\n")


def _eval_speed_figures(same_work: bool) -> dict:
    figures = json.loads((BENCH / "results" / "eval_speed.json").read_text())["figures"]
    ml = figures["ml100k"]
    if same_work:
        ml["ms"].update(movierec_build=1.9, movierec_total=2.5, ranx_total=119.7)
        ml["ratios"].update(ranx_vs_same_work=119.7 / 2.5, ranx_vs_end_to_end=119.7 / 16.2,
                            ranx_vs_metrics_only=119.7 / 0.7)
    else:  # a run that never timed movierec's input building (as the 2026-11-22 one)
        ml["ms"].update(full=30.0, accuracy=16.2, movierec_build=None, movierec_metrics=0.7, ranx_build=80.3,
                        ranx_evaluate=29.2)
        for key in ("movierec_total", "ranx_total"):
            ml["ms"].pop(key, None)
        ml["ratios"].update(ranx_vs_same_work=None, ranx_vs_end_to_end=6.75, ranx_vs_metrics_only=151)
    return figures


def test_eval_speed_headline_is_the_same_work_ratio(tmp_path: Path):
    folder = tmp_path / "results"
    render.write_results("eval_speed", _eval_speed_figures(same_work=True), folder / "eval_speed.json")
    text = render.render_eval_speed(render.Results(folder))
    assert "ranx (build + evaluate) 119.7 ms / movierec\n  (build + metrics) 2.5 ms: **47.9x**" in text
    assert "| movierec: build its relevance matrix from the same test interactions | 1.9 ms |" in text
    assert "171x" not in text and "**7.39x**" not in text  # the unequal ratios are no headline
    # without movierec's input building timed (the transcribed run), the end-to-end ratio leads
    render.write_results("eval_speed", _eval_speed_figures(same_work=False), folder / "eval_speed.json")
    old = render.render_eval_speed(render.Results(folder))
    assert "**6.75x**" in old and "**151x**" not in old and "Same work" not in old


def test_write_results_envelope(tmp_path: Path):
    path = render.write_results("demo", {"x": 1.5, "nan": float("nan")}, tmp_path / "demo.json",
                                command=".venv/bin/python benchmarks/demo.py --quick")
    data = json.loads(path.read_text())
    assert data["benchmark"] == "demo" and data["source"] == "measured" and data["figures"]["x"] == 1.5
    assert data["command"] == ".venv/bin/python benchmarks/demo.py --quick"
    assert data["machine"]["cpu_count"] >= 1 and len(data["machine"]["load_average"]) == 3
    assert len(data["date"]) == 10


def test_neural_ranking_fills_its_epochs_column(small_split, tmp_path: Path):
    bench = _load("neural_ranking")
    model = bench.make("neumf", epochs=2).fit(small_split.train)
    epochs, run = bench.epochs_of(model)
    assert isinstance(epochs, int) and 1 <= epochs <= 2 and run is not None
    assert bench.epochs_of(bench.make("pop").fit(small_split.train)) == (None, None)
    # rendered: an epochs column, filled for the PyTorch model and "—" for the others
    rows = [{"protocol": "leave-last-1", "model": "pop", "ndcg@10": 0.04, "fit_s": 0.0, "fit_cpu_s": 0.0,
             "epochs": None},
            {"protocol": "leave-last-1", "model": "neumf", "ndcg@10": 0.07, "fit_s": 9.0, "fit_cpu_s": 5.0,
             "epochs": epochs}]
    render.write_results("neural_ranking", {"rows": rows}, tmp_path / "neural_ranking.json")
    table = render.render_neural_ranking(render.Results(tmp_path)).splitlines()
    assert table[0] == "| protocol | model | NDCG@10 | fit s (wall / CPU) | epochs |"
    assert table[2] == "| leave-last-1 | pop | 0.0400 | 0.0 / 0.0 | — |"
    assert table[3] == f"| leave-last-1 | **neumf** | **0.0700** | 9.0 / 5.0 | {epochs} |"
