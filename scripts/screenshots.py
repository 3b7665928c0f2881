"""Regenerate the web page's screenshots in docs/images/ (first visit, recommendations,
similar movies, phone) by running the browser tests with MOVIEREC_SCREENSHOTS set:

    .venv/bin/python scripts/screenshots.py            # into docs/images/
    .venv/bin/python scripts/screenshots.py --out DIR

Needs Debian's chromium at /usr/bin/chromium and the dataset mirror (MOVIEREC_MIRROR).
Each PNG stays under 200 KB (palette-quantised when needed), as the docs' tests require.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["web_first_visit.png", "web_recommendations.png", "web_similar.png", "web_phone.png"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the PNGs")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if not Path("/usr/bin/chromium").exists():
        print("error: Debian's chromium (/usr/bin/chromium) is not installed.", file=sys.stderr)
        return 1
    env = {**os.environ, "MOVIEREC_SCREENSHOTS": str(out)}
    tests = ["tests/test_web_page.py::test_tour_groups_search_rate_recommend_similar_reload",
             "tests/test_web_page.py::test_phone_screen_has_no_horizontal_scrolling"]
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-n", "0", *tests],
                           cwd=ROOT, env=env)
    if code:
        return code
    for name in NAMES:
        path = out / name
        print(f"{path}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
