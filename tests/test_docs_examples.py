"""Docs that cannot rot (issue 12): every code block of README.md and docs/**/*.md runs, and
every output they show is what the code prints.

The runner is `scripts/docs.py` (also a command: `python scripts/docs.py run [PAGE]`): a
page's ```python blocks run in order in one namespace, like a notebook; its `movierec`
command lines run through the CLI; an ```output / ```text block right after a block is
compared with what the block printed (numbers with a decimal point within the page's
stated tolerance, everything else exactly). Each page runs in its own temporary folder,
so the tests are safe under pytest-xdist.

The tests after the page tests check the checker itself (a changed number, word or line
fails), the figures the pages show, and the notebooks made from the tutorial.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


docs = _load("docs")
PAGES = docs.pages()
#: figures drawn by scripts/docs_figures.py rather than by a page's own code
ILLUSTRATIONS = {"mf_factorisation.png", "decision_chart.png"}
#: the web page's screenshots, taken by scripts/screenshots.py in a real browser
SCREENSHOTS = set(re.findall(r'"(web_\w+\.png)"', (ROOT / "scripts" / "screenshots.py").read_text(encoding="utf-8")))
#: the reasons a block may be skipped for: a server that never returns; a reference page's
#: code over placeholder files of the reader's own (its runnable twin is in guides/own-data.md)
ALLOWED_SKIPS = ("never returns", "placeholder files")
#: pages whose code needs 8+ CPU seconds (several fits, a two-tower model, tuned configs):
#: still run in CI, marked slow so that `-m "not slow"` gives a quick pass over the rest
SLOW_PAGES = {
    "README.md", "docs/implicit.md", "docs/quickstart.md", "docs/tutorial/04-pytorch-model.md",
    "docs/tutorial/06-debugging.md", "docs/tutorial/10-implicit-feedback.md", "docs/tutorial/11-two-tower.md",
    "docs/guides/evaluating-honestly.md", "docs/guides/workflow-two-tower.md",
    "docs/guides/ranking-and-experiments.md",
}


def _param(page: Path):
    name = page.relative_to(ROOT).as_posix()
    marks = [pytest.mark.slow] if name in SLOW_PAGES else []
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_page_code_runs_and_prints_what_it_shows(page: Path, tmp_path: Path):
    skipped = docs.run_page(page, tmp_path)
    # figures: everything the page shows exists; what its code saves under images/ is shown
    made = {p.name for p in (tmp_path / "images").glob("*.png")}
    for ref in docs.image_refs(page):
        assert ref.parent == docs.IMAGES, f"{page.name} shows {ref}, outside docs/images"
        assert ref.exists(), f"{page.name} shows {ref.name}: run `python scripts/docs.py figures`"
        assert ref.name in made or ref.name in ILLUSTRATIONS | SCREENSHOTS, (
            f"{page.name} shows {ref.name}, which neither its code, scripts/docs_figures.py nor "
            f"scripts/screenshots.py draws")
    shown = {r.name for r in docs.image_refs(page)}
    assert made <= shown, f"{page.name} saves figures it never shows: {sorted(made - shown)}"
    for reason in skipped:
        assert any(word in reason for word in ALLOWED_SKIPS), (
            f"only commands that never return (or code over placeholder files) may be skipped: {reason}")


def test_every_page_has_been_collected():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert "README.md" in names and "docs/quickstart.md" in names
    assert sum(n.startswith("docs/tutorial/") for n in names) >= 10
    assert sum(n.startswith("docs/guides/") for n in names) >= 6


# -- the checker checks ---------------------------------------------------------------------

T = docs.Tolerance


@pytest.mark.parametrize("expected,printed,tol,ok", [
    ("RMSE 0.9153", "RMSE 0.9153", T(), True),
    ("RMSE 0.9153", "RMSE 0.9154", T(), True),          # one unit in the last shown digit
    ("RMSE 0.9153", "RMSE 0.9170", T(), False),
    ("RMSE 0.9153", "RMSE 0.9170", T(absolute=0.01), True),
    ("RMSE 0.9153", "RMSE 0.9300", T(absolute=0.01), False),
    ("RMSE 0.90", "RMSE 0.91", T(relative=0.02), True),
    ("RMSE 0.90", "RMSE 0.95", T(relative=0.02), False),
    ("user 42: movie 50", "user 42: movie 51", T(absolute=5), False),  # integers are exact
    ("100,000 ratings", "100,000 ratings", T(), True),
    ("100,000 ratings", "99,999 ratings", T(), False),
    ("Star Wars (1977)", "Star Trek (1977)", T(), False),
    ("a\n...\nz", "a\nb\nc\nz", T(), True),
    ("a\n...\nz", "a\nb\nc\ny", T(), False),
    ("a\nb", "a\nb\nc", T(), False),
    ("  x    1.5  ", "x 1.5", T(), True),                 # whitespace is not significant
])
def test_compare_output(expected, printed, tol, ok):
    assert (docs.compare_output(expected, printed, tol) is None) == ok


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """parse_page names pages relative to the project; let it accept a page in tmp_path."""
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    (tmp_path / "configs").mkdir()
    return tmp_path


def test_a_page_runs_in_order_and_its_outputs_are_checked(fake_root):
    page = _page(fake_root, "x\n\n```python\na = 2\n```\n\n```python\nprint(a * 21)\n```\n\n```output\n42\n```\n")
    blocks = docs.parse_page(page)
    assert [b.lang for b in blocks] == ["python", "python"] and blocks[1].expected == "42"
    work = fake_root / "w"
    work.mkdir()
    docs.run_page(page, work)
    _page(fake_root, "```python\nprint(43)\n```\n\n```output\n42\n```\n")
    with pytest.raises(docs.DocsError, match="differs"):
        docs.run_page(page, work)


def test_the_last_expression_is_shown_like_a_notebook(fake_root):
    page = _page(fake_root, "```python\nx = [1, 2]\nx\n```\n\n```text\n[1, 2]\n```\n")
    docs.run_page(page, fake_root)


def test_a_raising_block_fails_with_its_place(fake_root):
    page = _page(fake_root, "text\n\n```python\n1 / 0\n```\n")
    with pytest.raises(docs.DocsError, match=r"(?s)page.md:3:.*ZeroDivisionError"):
        docs.run_page(page, fake_root)


def test_tolerance_directives(fake_root):
    page = _page(fake_root, "<!-- tolerance: 0.1 -->\n\nprose\n\n```python\nprint(1.05)\n```\n\n```output\n1.0\n```\n"
                 "\n<!-- tolerance: 1% -->\n```python\nprint(1.05)\n```\n\n```output\n1.0\n```\n")
    blocks = docs.parse_page(page)
    assert blocks[0].tolerance.absolute == 0.1 and blocks[1].tolerance.relative == 0.01
    with pytest.raises(docs.DocsError, match="page.md:14"):  # the second block: 5% off, 1% allowed
        docs.run_page(page, fake_root)


def test_commands_run_through_the_cli_and_must_succeed(fake_root):
    page = _page(fake_root, "```console\n$ movierec models available --json | head\n```\n\n"
                 "```bash\nmovierec data describe no-such-dataset\n```\n")
    blocks = docs.parse_page(page)
    assert [b.lang for b in blocks] == ["shell", "shell"]
    with pytest.raises(docs.DocsError, match="no-such-dataset.*exited with status 1"):
        docs.run_page(page, fake_root)


def test_console_output_is_compared(fake_root):
    page = _page(fake_root, "```console\n$ movierec --version\nmovierec 9.9.9\n```\n")
    with pytest.raises(docs.DocsError, match="prints something else"):
        docs.run_page(page, fake_root)


def test_skip_needs_a_directive_right_above(fake_root):
    page = _page(fake_root, "<!-- skip: never returns -->\n```bash\nmovierec serve --registry r\n```\n"
                 "\n```python\nprint(1)\n```\n")
    blocks = docs.parse_page(page)
    assert blocks[0].skip == "never returns" and blocks[1].skip is None


# -- figures and notebooks -----------------------------------------------------------------------

def test_figures_are_small_and_all_shown():
    shown = {ref.name for page in PAGES for ref in docs.image_refs(page)}
    files = {p.name: p for p in docs.IMAGES.glob("*.png")}
    assert shown <= set(files), f"shown but missing (run scripts/docs.py figures): {sorted(shown - set(files))}"
    assert set(files) <= shown, f"in docs/images but shown nowhere: {sorted(set(files) - shown)}"
    for name, path in files.items():
        limit = 300 if name in SCREENSHOTS else 200  # screenshots: scripts/screenshots.py's own limit
        assert path.stat().st_size < limit * 1024, f"{name} is {path.stat().st_size // 1024} KB"


def test_illustrations_are_drawn(tmp_path):
    written = docs._illustrations(tmp_path)
    assert {p.name for p in written} == ILLUSTRATIONS
    assert all(p.stat().st_size > 10_000 for p in written)


def test_notebooks_are_up_to_date_and_valid(tmp_path):
    """The committed notebooks are exactly what `python scripts/docs.py notebooks` makes now."""
    import nbformat

    made = docs.notebooks(tmp_path)
    assert len(made) >= 10
    for path in made:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert any(c.cell_type == "code" for c in nb.cells), path.name
        committed = docs.NOTEBOOKS / path.name
        assert committed.exists(), f"{path.name} missing: run `python scripts/docs.py notebooks`"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{path.name} is stale: run `python scripts/docs.py notebooks`")
    assert {p.name for p in docs.NOTEBOOKS.glob("*.ipynb")} == {p.name for p in made}


def test_notebook_code_cells_are_the_page_code_blocks():
    page = docs.tutorial_pages()[3]  # the plain PyTorch chapter
    nb = docs.notebook_of(page)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code == [b.code for b in docs.parse_page(page) if b.lang == "python"]
