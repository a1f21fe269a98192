"""A labelled corpus as the language-model pipeline (corpus.py) reads it.

The documents come from labels.py (`--label-from file|folder|prefix|tsv`, split
by `--doc-sep`), streamed: text chunks in which every document ends with
EOS_CHAR, each with the label indices of its documents. The first pass over the
text counts documents and characters per label (LabelStats); the label set is
then fixed (sorted names, or a resumed run's own set), and the encoding pass
writes, beside each chunk's ids, the label of every token: `labels.bin`, one
small integer per token (uint8 up to 255 labels), read with positioned reads
like the ids, so memory never grows with the corpus.

A token's label is its document's; the end-of-document token belongs to the
document it ends. (A model reads the label of the document it predicts: the
label of each step's target, batches.py gives it one step on.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..config import DataConfig
from ..errors import CorpusError
from .labels import LabelSet, LabelStats, iter_documents, labelled_chunks


class LabelledSource:
    def __init__(self, files: list[Path], cfg: DataConfig, doc_sep: str | None, labels: LabelSet | None = None):
        assert cfg.label_from is not None
        self.files, self.cfg, self.doc_sep = files, cfg, doc_sep
        self.stats = LabelStats()
        self.labels = labels  # a resumed run's set; else the corpus' own, after the first pass
        self._counted = False

    def _docs(self):  # type: ignore[no-untyped-def]
        docs = iter_documents(self.files, self.cfg.label_from, self.doc_sep, self.cfg.encoding, self.cfg.errors)  # type: ignore[arg-type]
        if self._counted:
            return docs
        self._counted = True
        return (self.stats.add(d) for d in docs)

    def texts(self) -> Iterator[str]:
        """The corpus text, each document ended by EOS_CHAR (the first pass counts the labels)."""
        first = not self._counted
        for text, _ in labelled_chunks(self._docs(), _AnyLabel()):
            yield text
        if first and self.stats.docs == 0:
            raise CorpusError("the corpus holds no labelled documents.")

    def settle(self) -> LabelSet:
        """The label set, once the first pass has counted the corpus' labels."""
        found = self.stats.labels()
        if self.labels is None:
            self.labels = found.require(1, "conditioning on labels")
        unknown = [name for name in found if name not in self.labels]
        if unknown:
            raise CorpusError(
                f"the corpus has label{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown[:5]))} that the run "
                f"was not trained on; known: {self.labels.shown()}."
            )
        return self.labels

    def pairs(self) -> Iterator[tuple[str, list[int]]]:
        """(text chunk, the label index of each of its documents), every chunk ending at a document's end."""
        assert self.labels is not None, "settle() first"
        return labelled_chunks(self._docs(), self.labels)


class _AnyLabel:
    """A stand-in label set for the passes that only read text."""

    def index(self, label: str) -> int:
        return 0


def label_dtype(n_labels: int) -> np.dtype:
    """The smallest unsigned type for labels 0..n_labels (n_labels is "no label")."""
    return np.dtype(np.uint8) if n_labels < 256 else np.dtype(np.uint16) if n_labels < 65536 else np.dtype(np.uint32)


def token_labels(ids: np.ndarray, eos: int, doc_labels: list[int], first: int) -> tuple[np.ndarray, int]:
    """The label of each token of `ids`, whose first document is doc_labels[first];
    and the index of the document the next piece begins in."""
    ends = ids == eos
    doc = first + np.cumsum(ends) - ends  # (N,) each token's document: an end belongs to the one it ends
    if len(ids) and int(doc[-1]) >= len(doc_labels):
        raise CorpusError("the corpus' documents and their labels went out of step (a bug: please report it).")
    return np.asarray(doc_labels, dtype=np.int64)[doc] if len(ids) else np.zeros(0, dtype=np.int64), first + int(ends.sum())
