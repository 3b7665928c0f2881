"""The docs that cannot rot: run their code, compare their printed outputs, rebuild figures and notebooks.

Usage (from the project root, with the dataset mirror set as for the tests)::

    .venv/bin/python scripts/docs.py run [PAGE ...]     # execute pages' code blocks, compare outputs
    .venv/bin/python scripts/docs.py figures           # regenerate every docs/images/*.png
                                                       # (screenshots too: scripts/screenshots.py)
    .venv/bin/python scripts/docs.py notebooks         # docs/tutorial/*.md -> docs/tutorial/notebooks/*.ipynb

What a page may contain (see docs/contributing-docs.md):

* ```python blocks run in order in one namespace per page, like a notebook; when a block's
  last statement is an expression, its value is printed as a notebook would show it.
* ```bash / ```console blocks whose first line is a `movierec` command (or `$ movierec`):
  every `movierec` line runs through the CLI (in-process, exit status 0 required). Blocks
  that start otherwise (a comment, `export`) are listings, checked against the CLI's
  options by tests/test_docs_commands.py but not run.
* An ```output or ```text block right after a code block is what that block prints; numbers
  with a decimal point may differ by the tolerance in force, integers and words must match.
  A line `...` matches any number of lines.
* `<!-- tolerance: 0.01 -->` (absolute) or `<!-- tolerance: 2% -->` (relative): directly
  above a code block, for that block; elsewhere, for the rest of the page. Without one, a
  number may differ by one unit in its last shown decimal.
* `<!-- skip: reason -->` directly above a block: not run (for commands that never return,
  such as `movierec serve`).

Each page runs in its own working directory (a temporary one in the tests) holding a copy
of the project's `configs/` (MOVIEREC_CONFIGS points there), so documented
`--config configs/tuned/...` paths work and nothing a page does touches the project.
Figures a page saves under `images/` there become docs/images/ with `figures`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import re
import shlex
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
NOTEBOOKS = DOCS / "tutorial" / "notebooks"

SHELL_LANGS = {"bash", "console", "shell", "sh"}
OUTPUT_LANGS = {"output", "text"}
SHELL_BREAK = ("|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&")
_DIRECTIVE = re.compile(r"<!--\s*(skip|tolerance)\s*:\s*(.*?)\s*-->")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


# -- parsing -------------------------------------------------------------------------------

@dataclass
class Tolerance:
    """How far a printed number may drift: absolute, relative (fraction) or None (last digit)."""

    absolute: float | None = None
    relative: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Tolerance":
        text = text.strip()
        if text.endswith("%"):
            return cls(relative=float(text[:-1]) / 100)
        return cls(absolute=float(text))

    def allows(self, expected: str, actual: str) -> bool:
        e, a = _to_float(expected), _to_float(actual)
        if "." not in expected and "e" not in expected.lower():
            return e == a  # integers (IDs, counts) match exactly
        if self.absolute is not None:
            return abs(e - a) <= self.absolute + 1e-12
        if self.relative is not None:
            return abs(e - a) <= self.relative * abs(e) + 1e-12
        decimals = len(expected.split(".")[1].split("e")[0].split("E")[0]) if "." in expected else 0
        return abs(e - a) <= 10.0 ** -decimals + 1e-12


def _to_float(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass
class Block:
    """One code block of a page: what to run, what it should print, how strictly."""

    page: str
    line: int
    lang: str  # "python" or "shell"
    code: str
    expected: str | None = None
    tolerance: Tolerance = field(default_factory=Tolerance)
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_page(path: Path) -> list[Block]:
    """The runnable blocks of a Markdown page, each with its expected output and directives."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(ROOT).as_posix()
    lines = text.splitlines()
    blocks: list[Block] = []
    page_tol = Tolerance()
    pending: dict[str, str] = {}  # directives directly above the next block
    last: Block | None = None  # the previous code block, while only blank lines follow it
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", line)
        if fence:
            indent, marks, lang = fence.group(1), fence.group(2), fence.group(3).lower()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marks):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
                i += 1
            start = i - len(body)
            code = "\n".join(body)
            if lang in OUTPUT_LANGS and last is not None:
                last.expected = code
                last = None
            elif lang == "python" or lang in SHELL_LANGS:
                tol = Tolerance.parse(pending["tolerance"]) if "tolerance" in pending else page_tol
                block = Block(name, start, "python" if lang == "python" else "shell", code, tolerance=tol,
                              skip=pending.get("skip"))
                if block.lang == "python" or _starts_with_movierec(code):
                    blocks.append(block)
                    last = block
                else:
                    last = None
            else:
                last = None
            pending = {}
            i += 1
            continue
        directives = _DIRECTIVE.findall(stripped)
        if directives:
            for key, value in directives:
                pending[key] = value
            i += 1
            continue
        if stripped:
            # prose: block-level directives not followed by a block become page-level
            if "tolerance" in pending:
                page_tol = Tolerance.parse(pending["tolerance"])
            pending = {}
            last = None
        i += 1
    if "tolerance" in pending:
        page_tol = Tolerance.parse(pending["tolerance"])
    return blocks


def _starts_with_movierec(code: str) -> bool:
    """A shell block runs when its first line is a `movierec` command (`$ ` prompt allowed);
    blocks that start otherwise (comments, `export`, set-up) are command listings, whose
    lines tests/test_docs_commands.py checks against the CLI without running them."""
    first = next((line.strip() for line in code.splitlines() if line.strip()), "")
    return bool(re.match(r"(\$\s+)?movierec(\s|$)", first))


def _shell_commands(code: str) -> list[tuple[str, list[str]]]:
    """(command line, output lines shown under it) for each `movierec` line of a shell block.

    Backslash continuations are joined; `$ ` prompts are allowed; in a console block the
    lines after a `$ movierec ...` line up to the next prompt are its shown output.
    """
    out: list[tuple[str, list[str]]] = []
    lines = code.splitlines()
    console = any(line.lstrip().startswith("$ ") for line in lines)
    i = 0
    current: list[str] | None = None
    while i < len(lines):
        raw = lines[i].strip()
        prompt = raw.startswith("$ ")
        text = raw[2:].lstrip() if prompt else raw
        if (prompt or not console) and re.match(r"movierec(\s|$)", text):
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            current = []
            out.append((text, current))
        elif console and prompt:
            current = None
        elif console and current is not None:
            current.append(lines[i])
        i += 1
    return out


# -- output comparison ----------------------------------------------------------------------

def _tokens(line: str) -> list[tuple[str, str]]:
    """A line as ("num", text) and ("text", text) tokens; whitespace is not significant."""
    tokens: list[tuple[str, str]] = []
    for word in line.split():
        pos = 0
        for m in _NUMBER.finditer(word):
            # a sign belongs to the number only at the start of a word or after '(' / '='
            if m.start() > pos:
                tokens.append(("text", word[pos:m.start()]))
            tokens.append(("num", m.group()))
            pos = m.end()
        if pos < len(word):
            tokens.append(("text", word[pos:]))
    return tokens


def _lines_match(expected: str, actual: str, tol: Tolerance) -> bool:
    e, a = _tokens(expected), _tokens(actual)
    if len(e) != len(a):
        return False
    for (ek, ev), (ak, av) in zip(e, a):
        if ek != ak:
            return False
        if ek == "text" and ev != av:
            return False
        if ek == "num" and not tol.allows(ev, av):
            return False
    return True


def _clean(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def compare_output(expected: str, actual: str, tol: Tolerance) -> str | None:
    """None when `actual` matches `expected`, else a short description of the first mismatch.

    Lines are compared token by token (numbers within `tol`); an expected line `...`
    matches any number of actual lines.
    """
    exp, act = _clean(expected), _clean(actual)

    def match(i: int, j: int) -> bool:
        while i < len(exp):
            if exp[i].strip() == "...":
                return any(match(i + 1, jj) for jj in range(j, len(act) + 1))
            if j >= len(act) or not _lines_match(exp[i], act[j], tol):
                return False
            i, j = i + 1, j + 1
        return j == len(act)

    if match(0, 0):
        return None
    for n, (e, a) in enumerate(zip(exp, act)):
        if e.strip() == "...":
            break
        if not _lines_match(e, a, tol):
            return f"line {n + 1} differs:\n  shown:   {e}\n  printed: {a}"
    return (f"{len(exp)} line(s) shown, {len(act)} printed")


# -- running ----------------------------------------------------------------------------------

class DocsError(AssertionError):
    """A code block failed, or printed something other than what its page shows."""


def _run_python(block: Block, namespace: dict) -> str:
    """Execute one block in `namespace`; return what it printed (plus its last expression's value)."""
    tree = ast.parse(block.code, filename=block.where)
    display = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        display = ast.Expression(tree.body.pop().value)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(tree, block.where, "exec"), namespace)  # noqa: S102 - the docs' own code
        if display is not None:
            value = eval(compile(display, block.where, "eval"), namespace)  # noqa: S307
            if value is not None:
                print(repr(value))
    return buffer.getvalue()


def _run_command(command: str) -> tuple[str, bool]:
    """Run one documented `movierec ...` line in-process; (output, piped?)."""
    from typer.testing import CliRunner

    from movierec.cli import app

    tokens = shlex.split(command, comments=True)
    piped = False
    for j, tok in enumerate(tokens):
        if tok in SHELL_BREAK or tok.startswith(("|", ">", "2>")):
            tokens, piped = tokens[:j], True
            break
    result = CliRunner().invoke(app, tokens[1:], catch_exceptions=True)
    if result.exit_code != 0:
        from movierec.errors import MovierecError

        detail, exc = result.output, result.exception
        if isinstance(exc, MovierecError):
            detail += f"error: {exc}"
        elif exc is not None and not isinstance(exc, SystemExit):
            detail += "".join(traceback.format_exception(exc))
        raise DocsError(f"`{command}` exited with status {result.exit_code}:\n{detail}")
    return result.output, piped


def run_blocks(blocks: list[Block], workdir: Path) -> list[str]:
    """Run a page's blocks in order in `workdir`; raise DocsError at the first failure.

    Returns:
        The reasons of skipped blocks (for reporting).
    """
    skipped: list[str] = []
    namespace: dict = {"__name__": "__docs__"}
    configs = workdir / "configs"
    if not configs.exists():  # a copy: a documented `tune --out configs/...` must not touch the project's
        shutil.copytree(ROOT / "configs", configs, ignore=shutil.ignore_patterns("__pycache__"))
    old = Path.cwd()
    saved = {key: os.environ.get(key) for key in ("MOVIEREC_CONFIGS", "MOVIEREC_REGISTRY")}
    os.environ["MOVIEREC_CONFIGS"] = str(configs / "tuned")
    os.environ.pop("MOVIEREC_REGISTRY", None)
    os.chdir(workdir)
    try:
        for block in blocks:
            if block.skip is not None:
                skipped.append(f"{block.where}: {block.skip}")
                continue
            if block.lang == "python":
                try:
                    printed = _run_python(block, namespace)
                except Exception as exc:  # the docs' code raised: show where
                    raise DocsError(f"{block.where}: the code block raised\n"
                                    + "".join(traceback.format_exception(exc))) from exc
                if block.expected is not None:
                    problem = compare_output(block.expected, printed, block.tolerance)
                    if problem:
                        raise DocsError(f"{block.where}: the output shown differs from what the code prints: "
                                        f"{problem}\n--- printed ---\n{printed}")
            else:
                commands = _shell_commands(block.code)
                for command, shown in commands:
                    printed, piped = _run_command(command)
                    expected = "\n".join(shown) if any(s.strip() for s in shown) else None
                    if expected is None and block.expected is not None and len(commands) == 1:
                        expected = block.expected
                    if expected is not None and not piped:
                        problem = compare_output(expected, printed, block.tolerance)
                        if problem:
                            raise DocsError(f"{block.where}: `{command}` prints something else: {problem}"
                                            f"\n--- printed ---\n{printed}")
    finally:
        os.chdir(old)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return skipped


def run_page(path: Path, workdir: Path) -> list[str]:
    """Parse and run one page in `workdir` (see `run_blocks`)."""
    return run_blocks(parse_page(path), workdir)


def image_refs(path: Path) -> list[Path]:
    """The docs/images/*.png files a page shows (Markdown image links), resolved."""
    text = re.sub(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans: examples, not images
    found = []
    for ref in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", text):
        found.append((path.parent / ref).resolve())
    return found


# -- figures ------------------------------------------------------------------------------------

def _illustrations(out: Path) -> list[Path]:
    """The figures no page's code draws: the factorisation picture and the decision chart."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import docs_figures
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return docs_figures.draw_all(out)


def figures(out: Path = IMAGES, only: list[Path] | None = None) -> list[Path]:
    """Regenerate every figure the docs show into `out`: run the pages (their code saves
    figures under images/) and draw the illustrations. Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = _illustrations(out) if only is None else []
    for page in only or pages():
        blocks = parse_page(page)
        if not any("images/" in b.code for b in blocks):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            run_blocks(blocks, Path(tmp))
            for png in sorted((Path(tmp) / "images").glob("*.png")):
                shutil.copyfile(png, out / png.name)
                written.append(out / png.name)
    return written


# -- notebooks ----------------------------------------------------------------------------------

def tutorial_pages() -> list[Path]:
    """The tutorial's chapters (every docs/tutorial/*.md but its index), in order."""
    return [p for p in sorted((DOCS / "tutorial").glob("*.md")) if p.name != "index.md"]


def notebook_of(page: Path):
    """The Jupyter notebook of a tutorial page (jupytext: prose -> Markdown cells, ```python -> code)."""
    import jupytext

    nb = jupytext.reads(_notebook_links(page.read_text(encoding="utf-8")), fmt="md")
    nb.metadata.pop("jupytext", None)
    for n, cell in enumerate(nb.cells):  # stable cell IDs: regenerating changes nothing
        cell["id"] = f"cell-{n:03d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _notebook_links(text: str) -> str:
    """Relative links of a tutorial page, rewritten for its notebook one folder deeper:
    a sibling chapter `x.md` -> `x.ipynb`, anything else gets one more `../`."""

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^(?:[a-z]+:|#|/)", target):
            return m.group(0)
        if "/" not in target and target.split("#")[0].endswith(".md"):
            path, _, anchor = target.partition("#")
            target = path[:-3] + ".ipynb" + (f"#{anchor}" if anchor else "")
        else:
            target = "../" + target
        return f"{m.group(1)}({target})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, text)


def notebooks(out: Path = NOTEBOOKS) -> list[Path]:
    """Write docs/tutorial/*.md as .ipynb files into `out`; returns the files written."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in tutorial_pages():
        nb = notebook_of(page)
        target = out / f"{page.stem}.ipynb"
        target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute pages' code blocks and compare outputs")
    run.add_argument("pages", nargs="*", type=Path)
    fig = sub.add_parser("figures", help="regenerate docs/images/*.png")
    fig.add_argument("pages", nargs="*", type=Path, help="only the figures of these pages")
    fig.add_argument("--no-screenshots", action="store_true",
                     help="leave the web page's screenshots (scripts/screenshots.py, needs chromium) alone")
    sub.add_parser("notebooks", help="docs/tutorial/*.md -> docs/tutorial/notebooks/*.ipynb")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    if args.command == "run":
        failed = 0
        for page in [p.resolve() for p in args.pages] or pages():
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    skipped = run_page(page, Path(tmp))
                    print(f"ok    {page.relative_to(ROOT)}" + (f" ({len(skipped)} skipped)" if skipped else ""))
                except DocsError as exc:
                    failed += 1
                    print(f"FAIL  {page.relative_to(ROOT)}\n{exc}")
        return 1 if failed else 0
    if args.command == "figures":
        for path in figures(only=[p.resolve() for p in args.pages] or None):
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1024:.0f} KB")
        if not args.pages and not args.no_screenshots:
            import subprocess

            return subprocess.call([sys.executable, str(ROOT / "scripts" / "screenshots.py")], cwd=ROOT)
        return 0
    for path in notebooks():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
