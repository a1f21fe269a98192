"""Built-in corpora, made from what every Python installation already carries.

Nothing is downloaded: the language reference text ships with CPython as
`pydoc_data.topics`, the standard library's own source is a code corpus of
any size one wants, and the long-range corpora are generated from a seed
(data/longrange.py). `charrnn corpora` lists them; a corpus argument that names
one (and is not an existing path) trains on it.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# folders of the standard library that are not the standard library proper
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    files: Callable[[Path], list[Path]]  # cache dir -> the files that make up the corpus
    doc_sep: str | None = None  # how it splits into documents unless --doc-sep says otherwise


def _pydoc_topics(cache: Path) -> list[Path]:
    import pydoc_data.topics as topics

    # The topics in sorted order, separated by blank lines: one stream of English
    # prose about Python, about 0.5 MB.
    text = "\n\n".join(topics.topics[k].strip("\n") for k in sorted(topics.topics)) + "\n"
    out = cache / "pydoc-topics.txt"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    return [out]


def _stdlib_files(limit_dirs: bool) -> Callable[[Path], list[Path]]:
    def files(cache: Path) -> list[Path]:
        root = Path(sysconfig.get_paths()["stdlib"])
        found = []
        for p in sorted(root.rglob("*.py")):
            rel = p.relative_to(root).parts
            if _SKIP_DIRS.intersection(rel[:-1]):
                continue
            if limit_dirs and len(rel) > 1:
                continue
            found.append(p)
        return found

    return files


def _longrange(name: str) -> Callable[[Path], list[Path]]:
    def files(cache: Path) -> list[Path]:
        from . import longrange  # generated once, then read from the cache folder

        return [longrange.write(name, cache)]

    return files


def _balanced(cache: Path) -> list[Path]:
    from . import ordered

    return [ordered.write(cache)]


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("pydoc-topics", "the Python language reference topics from pydoc_data (English prose, ~0.5 MB)", _pydoc_topics),
        Builtin("stdlib-small", "the top-level modules of the Python standard library (code, ~5 MB)", _stdlib_files(True), "file"),
        Builtin("stdlib", "the whole Python standard library without its tests (code, ~11 MB)", _stdlib_files(False), "file"),
        Builtin("longrange-brackets", "generated: nested brackets of 4 kinds up to 16 deep, closers up to hundreds of characters "
                "after their openers (long-range memory, ~0.3 MB)", _longrange("brackets"), "line"),
        Builtin("longrange-copy", "generated: 2 letters, a random gap of ~48 dots, the 2 letters again (long-range memory, "
                "~0.3 MB)", _longrange("copy"), "line"),
        Builtin("balanced", "generated: bracket strings labelled balanced or unbalanced, the same characters in both "
                "(order-sensitive classification: --task classify)", _balanced, "line"),
    )
}


def builtin_names() -> list[str]:
    return list(BUILTINS)


def find(arg: str) -> Builtin | None:
    """The built-in corpus a name stands for, the long-range ones with their settings
    (`longrange-copy:gap=200`: a corpus of its own, checked when it is made); None if none."""
    if arg in BUILTINS:
        return BUILTINS[arg]
    base, colon, _ = arg.partition(":")
    if colon and base.startswith("longrange-") and base in BUILTINS:
        return Builtin(arg, BUILTINS[base].description, _longrange(arg.removeprefix("longrange-")), "line")
    return None
