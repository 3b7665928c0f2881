"""The docs site builds with warnings as errors (issue 12), without the network, and
contains what the nav promises: the tutorial, the guides, the API reference generated from
the docstrings, and BENCHMARKS.md included verbatim."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def _text(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def test_the_site_builds_strictly(site: Path):
    assert (site / "index.html").exists() and (site / "search" / "search_index.json").exists()


def test_tutorial_guides_and_images_are_there(site: Path):
    for page in ("quickstart", "tutorial/06-debugging", "guides/workflow-mf", "guides/choosing-a-model"):
        assert (site / page / "index.html").exists(), page
    assert (site / "images" / "debug_overfitting.png").exists()
    assert "debug_overfitting.png" in _text(site, "tutorial/06-debugging")


def test_api_reference_comes_from_the_docstrings(site: Path):
    html = _text(site, "api/data")
    assert "Fetch (if not cached) and parse a MovieLens dataset by name" in html  # load_movielens' docstring
    assert "leave_last_k_split" in html
    assert "Top-k movies for each raw user ID" in _text(site, "api/models")       # Recommender.recommend


def test_benchmarks_page_is_benchmarks_md(site: Path):
    html = _text(site, "benchmarks")
    first_heading = re.search(r"^## (.+)$", (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), re.M).group(1)
    assert first_heading in html and "--8&lt;--" not in html and "--8<--" not in html


def test_no_page_loads_anything_from_the_network(site: Path):
    """No web fonts, scripts or styles from a CDN: the site works offline."""
    remote = re.compile(r'<(?:script|link|img)[^>]*(?:src|href)="(?:https?:)?//', re.I)
    offenders = [p.relative_to(site).as_posix() for p in site.rglob("*.html")
                 if remote.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
