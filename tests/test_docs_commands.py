"""The docs say what the code does (issue 9): every `movierec ...` command line in the
code blocks of README.md and docs/*.md names commands that exist and options (and
option values, where the command declares its choices) that the command accepts.

The command tree is read from the Typer app itself (`typer.main.get_command`), the same
objects `--help` is printed from, so the check needs no subprocess. (Typer carries its own
copy of click, so commands and parameters are recognised by what they have, not by class.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from movierec.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]  # tutorial/ and guides/ too
#: tokens that end the movierec part of a shell line
SHELL_BREAK = ("|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&")


def documented_commands() -> list[tuple[str, int, str]]:
    """(file name, line number, command) for every `movierec ...` line in a fenced code block,
    with backslash continuations joined and trailing comments dropped, and every inline
    code span `movierec ...` in the prose (optional parts written [like this] unbracketed)."""
    found = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        in_block = False
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                in_block = not in_block
                i += 1
                continue
            start = i
            text = line.strip()
            if text.startswith("$ "):
                text = text[2:].lstrip()
            if in_block and re.match(r"movierec(\s|$)", text):
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1] + " " + lines[i].strip()
                found.append((path.relative_to(ROOT).as_posix(), start + 1, text))
            elif not in_block:
                for span in re.findall(r"`(movierec(?:\s[^`]*)?)`", line):
                    found.append((path.relative_to(ROOT).as_posix(), start + 1, re.sub(r"[\[\]]", "", span)))
            i += 1
    return found


def _tokens(command: str) -> list[str]:
    tokens = shlex.split(command, comments=True)
    for j, tok in enumerate(tokens):
        if tok in SHELL_BREAK or tok.startswith(("|", ">", "2>")):
            return tokens[:j]
    return tokens


def _is_group(cmd) -> bool:
    return hasattr(cmd, "commands")


def _option(cmd, name: str):
    """The option of `cmd` spelled `name` (long or short form), or None."""
    for param in cmd.params:
        if param.param_type_name == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def check_command(root, command: str) -> list[str]:
    """Problems with one documented command line: unknown subcommands, unknown options,
    values outside an option's declared choices, too many positional arguments."""
    tokens = _tokens(command)
    assert tokens and tokens[0] == "movierec"
    cmd = root
    path = ["movierec"]
    positionals: list[str] = []
    problems: list[str] = []
    eager = False  # --version / --help: no command needed
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("...", "…"):
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1 and not re.match(r"^-\d", tok):
            name, eq, value = tok.partition("=")
            if name == "--help":
                eager = True
                i += 1
                continue
            opt = _option(cmd, name)
            if opt is None:
                problems.append(f"`{' '.join(path)}` has no option {name}")
                if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                    i += 1  # most likely its value
            elif opt.is_eager:
                eager = True
            elif not (opt.is_flag or opt.count):
                if not eq:
                    i += 1
                    value = tokens[i] if i < len(tokens) else ""
                choices = getattr(getattr(opt, "type", None), "choices", None)
                if choices and value not in choices:
                    problems.append(f"`{' '.join(path)} {name}` does not accept {value!r} "
                                    f"(choices: {', '.join(map(str, choices))})")
            i += 1
            continue
        if _is_group(cmd):
            sub = cmd.commands.get(tok)
            if sub is None:
                problems.append(f"`{' '.join(path)}` has no command {tok!r} "
                                f"(commands: {', '.join(sorted(cmd.commands))})")
                return problems
            cmd = sub
            path.append(tok)
        else:
            positionals.append(tok)
        i += 1
    if _is_group(cmd) and not eager:
        problems.append(f"`{' '.join(path)}` needs a command (one of {', '.join(sorted(cmd.commands))})")
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    if not any(a.nargs == -1 for a in arguments) and len(positionals) > sum(max(a.nargs, 1) for a in arguments):
        problems.append(f"`{' '.join(path)}` takes {len(arguments)} positional argument(s), "
                        f"the docs give {len(positionals)}: {' '.join(positionals)}")
    return problems


ROOT_COMMAND = typer.main.get_command(app)
COMMANDS = documented_commands()


def test_the_docs_have_commands_to_check():
    files = {f for f, _, _ in COMMANDS}
    assert "README.md" in files and len(COMMANDS) >= 30


@pytest.mark.parametrize("where,command", [(f"{f}:{n}", c) for f, n, c in COMMANDS],
                         ids=[f"{f}:{n}" for f, n, _ in COMMANDS])
def test_documented_command_matches_help(where, command):
    problems = check_command(ROOT_COMMAND, command)
    assert not problems, f"{where}: {command}\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("command,expected", [
    ("movierec recommend --model-dir m --user 42 -k 10", []),
    ("movierec recommend --model-dir m --usr 42", ["has no option --usr"]),
    ("movierec data describe ml-100k --json | jq .n_ratings", []),
    ("movierec data fetch ml-100k extra", ["positional argument"]),
    ("movierec nosuch --x", ["has no command 'nosuch'"]),
    ("movierec models", ["needs a command"]),
    ("movierec --version", []),
    ("movierec compare --dataset ml-100k --models pop,mf --out=runs/x  # a comment --bogus", []),
])
def test_the_checker_itself(command, expected):
    """The checker finds what it should (and nothing in correct lines), so a passing docs
    test means something."""
    problems = check_command(ROOT_COMMAND, command)
    assert len(problems) == len(expected), problems
    for problem, text in zip(problems, expected):
        assert text in problem
