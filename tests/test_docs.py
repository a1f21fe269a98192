"""The docs cannot drift from the program: every `charrnn ...` line they show is parsed
against the real Typer app.

A line counts when it is a command a reader would type: in a fenced block, a line that
starts with `charrnn ` or `$ charrnn ` (or runs `-m charrnn` under torchrun), with its
`\\` continuation lines; in prose, an inline code span that starts with `charrnn `. Each
is split as a shell would split it and handed to click's own parser for that command
(the app is built at test time, so options generated from declarations are what is
checked): the command must exist, every option must be one it takes, an option that
needs a value must get one, and a value given for a choice (`--cell`, `--task`, ...)
must be one of its choices. Placeholders stay legal: `[--opt X]` is an optional
part, `a|b|c` lists alternatives, and CAPITALS or `$VAR` stand for what the reader
fills in; a bare `...` ends the command (what follows annotates it). Nothing is run: no subprocess, no training.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import pytest
from typer.main import get_command

from charrnn.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"`(charrnn [^`]+)`")
OPTIONAL = re.compile(r"\[(--[^\[\]]*)\]")  # "[--params 500k]" -> "--params 500k"


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command after `charrnn`) for each command line the markdown shows."""
    found: list[tuple[int, str]] = []
    lines = text.splitlines()
    prose = list(lines)  # the text with fenced lines blanked, for inline spans (which may wrap)
    fenced, i = False, 0
    while i < len(lines):
        line, n = lines[i], i + 1
        if FENCE.match(line):
            fenced, prose[i], i = not fenced, "", i + 1
            continue
        if fenced:
            prose[i] = ""
            cmd = line.strip()
            while cmd.endswith("\\") and i + 1 < len(lines):  # a continued shell line
                i += 1
                prose[i] = ""
                cmd = cmd[:-1] + " " + lines[i].strip()
            cmd = cmd.removeprefix("$ ")
            if cmd.startswith("charrnn "):
                found.append((n, cmd.removeprefix("charrnn ")))
            elif " -m charrnn " in cmd and not cmd.startswith(("#", "import")):
                found.append((n, cmd.split(" -m charrnn ", 1)[1]))
        i += 1
    joined = "\n".join(prose)
    for m in INLINE.finditer(joined):
        found.append((joined.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()).removeprefix("charrnn ")))
    return sorted(found)


@cache
def _group():  # the app as click sees it, built once per test session
    return get_command(app)


def placeholder(token: str) -> bool:
    """A value the reader fills in, or a list of alternatives: not checked against choices."""
    return "|" in token or "$" in token or token.isupper() or token in ("...", "…") or "<TAB>" in token  # what is typed before a TAB


def check(command: str) -> str | None:
    """None when `charrnn <command>` parses against the app, else what is wrong, in one line."""
    try:
        tokens = shlex.split(OPTIONAL.sub(r"\1", command), comments=True)
    except ValueError as e:
        return f"cannot split the line as a shell would: {e}"
    for stop, t in enumerate(tokens):
        if t in ("...", "…"):  # "charrnn train CORPUS ...  cli/train.py: ...": the rest is elided or annotation
            tokens = tokens[:stop]
            break
    group = _group()
    if not tokens or tokens[0].startswith("-"):
        own = {"--help", *(o for p in group.params for o in p.opts)}  # the app's own options: --install-completion, ...
        return None if all(t in own for t in tokens) else f"no command before {tokens[0]!r}"
    name, args = tokens[0], tokens[1:]
    cmd = group.commands.get(name)
    if cmd is None:
        return f"no command {name!r} (the app has {', '.join(group.commands)})"
    ctx = cmd.context_class(cmd, info_name=name, parent=group.context_class(group, info_name="charrnn"))
    parser = cmd.make_parser(ctx)
    try:
        opts, _args, order = parser.parse_args(args=list(args))
    except Exception as e:  # click's NoSuchOption, BadOptionUsage ...: the user would see this
        return f"{type(e).__name__}: {e.format_message() if hasattr(e, 'format_message') else e}"
    for param in order:  # each value through the option's own conversion and check, as the app would
        value = opts.get(param.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if value is None or getattr(param, "is_eager", False) or any(isinstance(v, str) and placeholder(v) for v in values):
            continue
        try:
            param.process_value(ctx, value)
        except Exception as e:
            return f"{param.opts[0]} {value!r}: {e.format_message() if hasattr(e, 'format_message') else e}"
    return None


def _all_lines() -> list[tuple[str, int, str]]:
    return [(p.relative_to(ROOT).as_posix(), n, c) for p in DOCS for n, c in command_lines(p.read_text(encoding="utf-8"))]


def test_every_command_line_in_the_docs_parses_against_the_app():
    lines = _all_lines()
    assert len(lines) > 40, "the checker found too few command lines: is the extraction broken?"
    problems = [f"{f}:{n}: charrnn {c}\n    {why}" for f, n, c in lines if (why := check(c))]
    assert not problems, "doc lines the app does not accept:\n" + "\n".join(problems)


def test_the_docs_show_every_command():
    shown = {c.split()[0] for _, _, c in _all_lines() if c.split()}
    assert set(get_command(app).commands) <= shown, set(get_command(app).commands) - shown


# ------------------------------------------------------------ the checker itself


@pytest.mark.parametrize(
    "line, wrong",
    [
        ("train notes.txt --hiden 128", "--hiden"),  # a misspelled option
        ("sample tour --temprature 0.8", "--temprature"),
        ("train --cell lstmm", "lstmm"),  # a choice that does not exist
        ("trian notes.txt", "trian"),  # a command that does not exist
        ("sample tour --seed", "--seed"),  # an option left without its value
        ("predict RUN --beam 5 --cells rnn", "--cells"),  # an option of another command
    ],
)
def test_the_checker_fails_a_wrong_line(line, wrong):
    why = check(line)
    assert why is not None and wrong in why, why


@pytest.mark.parametrize(
    "line",
    [
        "train --time 90s --name tour",
        "train CORPUS ...                  cli/train.py: options -> DataConfig",
        "compare CORPUS --cells rnn,lstm,gru --time 1m [--params 500k]",
        "train --cell rnn|gru|lstm --layers 1 --hidden 128 --time 45s --name small-CELL",
        'inspect small-rnn --text "$T" --gradients',
        "predict checkpoints/RUN \"[MAX 2 9 [MIN 4 7 ] 0 ]\"  # the answer first",
        "sample tour --no-stop --stop END --stop '.'",
    ],
)
def test_the_checker_passes_a_right_line(line):
    assert check(line) is None


def test_the_extraction_finds_fenced_console_continued_and_inline_lines():
    text = "\n".join([
        "Run `charrnn info tour` to see it; `charrnn` alone is not a command line, `charrnn sample",
        "tour --seed 3` wraps.",
        "```console",
        "$ charrnn train a.txt \\",
        "    --steps 10",
        "corpus: 1 file",
        "```",
        "```bash",
        "torchrun --standalone --nproc-per-node 2 -m charrnn train c.txt --device cpu",
        "charrnn runs",
        "```",
        "charrnn train outside a fence is prose",
    ])  # fmt: skip
    assert command_lines(text) == [(1, "info tour"), (1, "sample tour --seed 3"), (4, "train a.txt  --steps 10"), (9, "train c.txt --device cpu"),
                                   (10, "runs")]  # fmt: skip


# ------------------------------------------------------------ links between the pages

LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces to -)."""
    out, fenced = set(), False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def prose(text: str) -> str:
    """A page without its fenced blocks and inline code, where brackets are code, not links."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def test_every_link_between_the_pages_finds_its_file_and_heading():
    broken = []
    for page in DOCS:
        for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_stays_a_five_minute_read():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    # .ci/run installs and tests as the README says: keep the two in step
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]"' in text and re.search(r'pip install( --quiet)? -e "\.\[dev\]"', ci)
    assert "\npython -m pytest\n" in text and "\npython -m pytest\n" in ci
