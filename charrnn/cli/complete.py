"""Shell completion: what a TAB offers for runs, corpora, cell kinds and tasks.

Each function is a Typer `autocompletion` callback, (ctx, incomplete) -> [(value,
help)], attached wherever its option or argument is declared (common.py's RunArg; the
options whose values are a registry's names, through `names()` in cli/declared.py;
train's and compare's corpus arguments). Typer keeps the
values that start with what was typed. The shell runs the whole command line
parser at every TAB, so nothing here imports torch or opens a checkpoint: a run is
a folder under --checkpoints (the one typed before the cursor, else the default)
holding last.pt or best.pt, newest first.

`charrnn --install-completion` writes the shell's script (bash, zsh, fish,
PowerShell); docs/completion.md says more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import DEFAULT_CHECKPOINTS

Items = list[tuple[str, str]]
HELP_CHARS = 60  # zsh and fish show a line of help beside each value; Typer wraps longer ones mid-list


def _help(text: str) -> str:
    """A value's help as the shell shows it: short, and read as plain text (Typer renders it as Rich markup)."""
    from rich.markup import escape

    return escape(text if len(text) <= HELP_CHARS else text[: HELP_CHARS - 1].rstrip() + "…")


def _root(ctx: Any) -> Path:
    """The checkpoints folder of the command being completed."""
    given = getattr(ctx, "params", {}).get("checkpoints") if ctx is not None else None
    return Path(given) if given else Path(DEFAULT_CHECKPOINTS)


def run_names(ctx: Any, incomplete: str) -> Items:
    """The runs under the checkpoints folder, newest first; a path being typed completes as a path."""
    if os.sep in incomplete or incomplete.startswith("."):
        return paths(incomplete)
    root = _root(ctx)
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    runs = []
    for p in folders:
        times = [f.stat().st_mtime for f in (p / "last.pt", p / "best.pt") if f.is_file()]
        if times:
            runs.append((max(times), p.name))
    return [(name, f"run in {root}") for _, name in sorted(runs, reverse=True)]


def corpora(ctx: Any, incomplete: str) -> Items:
    """The built-in corpora, tree sets and pair sets, then the files and folders that match."""
    from ..data.builtin import BUILTINS
    from ..data.listops import TREE_SETS
    from ..data.pairs import PAIR_SETS

    named = [(b.name, _help(b.description)) for b in BUILTINS.values()]
    named += [(t.name, _help(f"trees (--task tree): {t.description}")) for t in TREE_SETS.values()]
    named += [(s.name, _help(f"pairs (--task seq2seq): {s.description}")) for s in PAIR_SETS.values()]
    return named + paths(incomplete)


def cells(ctx: Any, incomplete: str) -> Items:
    from ..models import registry

    return [(k.name, _help(k.about)) for k in registry.KINDS.values()]


def cell_lists(ctx: Any, incomplete: str) -> Items:
    """`--cells lstm,gr<TAB>`: the kinds, after the ones already in the list."""
    from ..models import registry

    done, _, last = incomplete.rpartition(",")
    head = done + "," if done else ""
    taken = set(done.split(","))
    return [(head + n, _help(registry.KINDS[n].about)) for n in registry.names(registry.SEQUENCE) if n not in taken and n.startswith(last)]


def tasks(ctx: Any, incomplete: str) -> Items:
    from ..tasks import TASKS

    return [(t.name, _help(t.about)) for t in TASKS.values()]


def paths(incomplete: str) -> Items:
    """Files and folders starting with `incomplete` (a folder with a trailing slash), as a shell would list them."""
    folder, sep, start = incomplete.rpartition(os.sep)
    base = folder + sep  # "", "dir/" or "/"
    try:
        shown = [e for e in os.scandir(base or ".") if e.name.startswith(start) and (start.startswith(".") or not e.name.startswith("."))]
        entries = sorted(shown, key=lambda e: e.name)  # hidden files only when a dot is typed, as shells do
    except OSError:
        return []
    return [(base + e.name + (os.sep if e.is_dir() else ""), "") for e in entries]


def names(choices: Any) -> Any:
    """A completer for an option whose values are a registry's names, read when it is
    completed (`--cell`, `--task`, `--decoder-cell`, generated in cli/declared.py)."""

    def complete(ctx: Any, incomplete: str) -> Items:
        from ..models import registry
        from ..tasks import TASKS

        about = {**{k.name: k.about for k in registry.KINDS.values()}, **{t.name: t.about for t in TASKS.values()}}
        return [(n, _help(about.get(n, ""))) for n in choices()]

    return complete
