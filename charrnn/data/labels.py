"""Labelled documents: text that comes with a label, for conditioning (a model of
P(text | label)) and for classification (one label out per document).

A label comes from one of four sources (`--label-from`):

    file     the file's name without its extension    (poems/keats.txt -> keats)
    folder   the name of the file's parent folder      (reviews/pos/0001.txt -> pos)
    prefix   each document begins `label<TAB>text`     (the label is stripped off)
    tsv      each line is one document, `label<TAB>text` (prefix with one document a line)

Files are read and split into documents by reading.py (strict UTF-8, newlines
normalised, `--doc-sep line|blank|file|<literal>`); without a separator each file
is one document (tsv: each line). Documents stream one at a time, so memory holds
the largest document, never the corpus.

A LabelSet maps labels to indices, sorted so the mapping is the same on every run;
it travels inside checkpoints as a plain dict. LabelStats counts documents and
characters per label for `charrnn info` and the training start lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from ..config import LABEL_SOURCES
from ..errors import CheckpointError, ConfigError, CorpusError
from .reading import CHUNK_BYTES, _DocSplitter, iter_file_text
from .tokenizer import EOS_CHAR

MAX_LABEL_CHARS = 100  # a label is a short name; a longer "label" means a file that is not label<TAB>text


class Document(NamedTuple):  # not a frozen dataclass: one is made per document, and a tuple is cheaper to make
    """One document, its label, and where it came from (path, 1-based first line)."""

    label: str
    text: str
    path: Path
    line: int


def check_label(label: str, where: str) -> str:
    """The label itself when it is usable; else a CorpusError that names `where`."""
    if not label:
        raise CorpusError(f"{where}: the label is empty; every document needs a label.")
    if any(c in label for c in "\t\n\r"):
        raise CorpusError(f"{where}: the label {label!r} holds a tab or a newline; labels are one-line names.")
    if len(label) > MAX_LABEL_CHARS:
        raise CorpusError(
            f"{where}: a label of {len(label):,} characters ({label[:30]!r}...); labels are short names. "
            "Is the file label<TAB>text, label first?"
        )
    return label


def guess_source(files: Sequence[Path]) -> str | None:
    """The source 'tsv' when every file ends in .tsv (a table of label<TAB>text lines), else None."""
    if files and all(Path(f).suffix.lower() == ".tsv" for f in files):
        return "tsv"
    return None


def _split_mode(source: str, doc_sep: str | None) -> str:
    if source not in LABEL_SOURCES:
        raise ConfigError(f"--label-from must be one of {', '.join(LABEL_SOURCES)}, got {source!r}.")
    if source == "tsv":
        if doc_sep not in (None, "line"):
            raise ConfigError(f"a TSV of label<TAB>text holds one document a line; --doc-sep {doc_sep} does not apply.")
        return "line"
    return doc_sep or "file"


def _name_label(path: Path, source: str) -> str:
    label = path.stem if source == "file" else path.parent.name
    what = "file name" if source == "file" else "folder name"
    try:
        return check_label(label, str(path))
    except CorpusError:
        raise CorpusError(f"{path}: its {what} gives the label {label!r}, which is not usable (empty, too long, or "
                          "holding a tab or newline); rename it or choose another --label-from.") from None  # fmt: skip


def _no_tab(path: Path, line: int, source: str) -> CorpusError:
    form = "each line is label<TAB>text" if source == "tsv" else "each document must begin label<TAB>text"
    return CorpusError(f"{path}:{line}: no tab after the label ({form}).")


def _split_prefix(text: str, path: Path, line: int, source: str) -> tuple[str, str]:
    # the hot path of every prefixed document: no f-string, no copy of the body
    tab = text.find("\t")
    if tab < 0 or text.find("\n", 0, tab) >= 0:
        raise _no_tab(path, line, source)
    label = text[:tab].strip()
    if not label or len(label) > MAX_LABEL_CHARS:  # (a tab, CR or newline cannot be in it)
        check_label(label, f"{path}:{line}")
    body = text[tab + 1 :]
    if not body or body.isspace():
        raise CorpusError(f"{path}:{line}: the label {label!r} has no text after its tab.")
    return label, body


def iter_documents(
    files: Sequence[Path], source: str, doc_sep: str | None = None, encoding: str = "utf-8", errors: str = "strict"
) -> Iterator[Document]:
    """Every document of the files, in order, as a Document (label, text, path, line).

    `source` is file|folder|prefix|tsv (see the module docstring); `doc_sep` is
    reading.py's (line|blank|file|<literal>, None for one document a file).
    Raises CorpusError naming the file and line for a malformed document, and
    ConfigError for a source or separator that makes no sense.
    """
    mode = _split_mode(source, doc_sep)
    prefixed = source in ("prefix", "tsv")
    for path in files:
        fixed = None if prefixed else _name_label(path, source)
        for text, line in _raw_documents(path, mode, encoding, errors, prefixed):
            if fixed is None:
                label, text = _split_prefix(text, path, line, source)
                yield Document(label, text, path, line)
            else:
                yield Document(fixed, text, path, line)


def _raw_documents(path: Path, mode: str, encoding: str, errors: str, prefixed: bool) -> Iterator[tuple[str, int]]:
    """(text, first line) of each document of one file, as reading.py splits it."""
    splitter = _DocSplitter(mode, starts=True)
    starts = splitter.starts
    assert starts is not None
    pending: list[str] = []  # pieces of the document being read
    head_ok = not prefixed  # its label's tab has been seen (prefix sources only)

    def outputs() -> Iterator[str]:
        for chunk in iter_file_text(path, encoding, errors):
            yield splitter.feed(chunk)
        yield splitter.end()

    for out in outputs():
        if not out:
            continue
        *done, rest = out.split(EOS_CHAR)
        for k, part in enumerate(done):
            if pending:
                pending.append(part)
                part = "".join(pending)
                pending.clear()
                head_ok = not prefixed
            yield part, (starts[k] if starts else 1)
        del starts[: len(done)]  # drained as we go: memory does not grow with the number of documents
        if rest:
            pending.append(rest)
            if not head_ok:
                # Fail early on a long document with no label, instead of reading it whole first.
                pending[:] = ["".join(pending)]
                head = pending[0]
                head_ok = "\t" in head
                if not head_ok and ("\n" in head or len(head) > MAX_LABEL_CHARS):
                    raise _no_tab(path, starts[0] if starts else 1, "prefix")


# --------------------------------------------------------------- label sets


class LabelSet:
    """The labels of a task, sorted, each with a stable index (0 .. len-1)."""

    def __init__(self, labels: Iterable[str]):
        self.names: tuple[str, ...] = tuple(sorted(set(labels)))
        for name in self.names:
            check_label(name, "label set")
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and other.names == self.names

    def __repr__(self) -> str:
        return f"LabelSet({list(self.names)!r})"

    def index(self, label: str) -> int:
        """The label's index; ConfigError listing the known labels for an unknown one."""
        try:
            return self._index[label]
        except KeyError:
            raise ConfigError(f"unknown label {label!r}; known: {self.shown()}") from None

    def label(self, index: int) -> str:
        """The label at `index`."""
        return self.names[index]

    def shown(self, most: int = 20) -> str:
        """The labels as a comma-separated list, cut after `most` with a count of the rest."""
        more = f" and {len(self.names) - most} more" if len(self.names) > most else ""
        return ", ".join(self.names[:most]) + more

    def require(self, at_least: int, purpose: str) -> "LabelSet":
        """Itself when it holds at least `at_least` labels; else a CorpusError saying `purpose` needs them."""
        if len(self.names) < at_least:
            found = f"only {len(self.names)} label" + ("s" if len(self.names) != 1 else "")
            found += f" ({self.shown()})" if self.names else ""
            raise CorpusError(
                f"the corpus has {found}; {purpose} needs at least {at_least}. Check --label-from "
                "(file names, folder names, or a label<TAB> prefix) and the files given."
            )
        return self

    def to_state(self) -> dict[str, Any]:
        """A plain dict for checkpoints: {"labels": [...]} in index order."""
        return {"labels": list(self.names)}

    @classmethod
    def from_state(cls, state: Any) -> "LabelSet":
        """The LabelSet stored by to_state; CheckpointError when the dict is damaged."""
        names = state.get("labels") if isinstance(state, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or names != sorted(set(names)):
            raise CheckpointError("the checkpoint's label set is damaged (expected a sorted list of distinct names).")
        try:
            return cls(names)
        except CorpusError as e:
            raise CheckpointError(f"the checkpoint's label set is damaged: {e}") from None


# --------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LabelCount:
    """How many documents carry one label, and their characters (labels not counted)."""

    docs: int
    chars: int


class LabelStats:
    """Documents and characters per label, counted as documents stream past."""

    def __init__(self) -> None:
        self._docs: dict[str, int] = {}
        self._chars: dict[str, int] = {}

    def add(self, doc: Document) -> Document:
        """Counts `doc` and returns it (so a pipeline can count while it passes documents on)."""
        self._docs[doc.label] = self._docs.get(doc.label, 0) + 1
        self._chars[doc.label] = self._chars.get(doc.label, 0) + len(doc.text)
        return doc

    def counts(self) -> dict[str, LabelCount]:
        """label -> LabelCount(docs, chars), labels sorted."""
        return {k: LabelCount(self._docs[k], self._chars[k]) for k in sorted(self._docs)}

    def labels(self) -> LabelSet:
        """The LabelSet of every label seen."""
        return LabelSet(self._docs)

    @property
    def docs(self) -> int:
        """Documents counted, all labels together."""
        return sum(self._docs.values())

    @property
    def chars(self) -> int:
        """Their characters, all labels together."""
        return sum(self._chars.values())

    def summary(self, most: int = 8) -> str:
        """One line: how many labels, then `name docs/chars` per label (at most `most`)."""
        counts = self.counts()
        parts = [f"{k} {c.docs:,} docs / {c.chars:,} chars" for k, c in list(counts.items())[:most]]
        if len(counts) > most:
            parts.append(f"and {len(counts) - most} more")
        return f"{len(counts)} label{'s' if len(counts) != 1 else ''}: " + ", ".join(parts)

    def to_state(self) -> dict[str, Any]:
        """A plain dict for checkpoints: {label: [docs, chars]}."""
        return {k: [c.docs, c.chars] for k, c in self.counts().items()}

    @classmethod
    def from_state(cls, state: Any) -> "LabelStats":
        """The LabelStats stored by to_state; CheckpointError when the dict is damaged."""
        ok = isinstance(state, dict) and all(
            isinstance(k, str) and isinstance(v, list) and len(v) == 2 and all(isinstance(n, int) and n >= 0 for n in v)
            for k, v in state.items()
        )
        if not ok:
            raise CheckpointError("the checkpoint's label statistics are damaged (expected {label: [docs, chars]}).")
        stats = cls()
        for k, (docs, chars) in state.items():
            stats._docs[k], stats._chars[k] = docs, chars
        return stats


def count_labels(docs: Iterable[Document]) -> LabelStats:
    """LabelStats of all `docs` (one pass)."""
    stats = LabelStats()
    for doc in docs:
        stats.add(doc)
    return stats


def labelled_chunks(docs: Iterable[Document], labels: LabelSet, chunk_chars: int = CHUNK_BYTES) -> Iterator[tuple[str, list[int]]]:
    """The documents as the language-model pipeline reads a corpus: text chunks of
    about `chunk_chars` characters in which every document is followed by EOS_CHAR,
    each with the label indices of the documents it holds, in order. A chunk
    always ends at a document's end (so a long document is a chunk of its own)."""
    pieces: list[str] = []
    ids: list[int] = []
    size = 0
    for doc in docs:
        pieces.append(doc.text + EOS_CHAR)
        ids.append(labels.index(doc.label))
        size += len(doc.text) + 1
        if size >= chunk_chars:
            yield "".join(pieces), ids
            pieces, ids, size = [], [], 0
    if pieces:
        yield "".join(pieces), ids
