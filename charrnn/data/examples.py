"""Whole examples, encoded: labelled documents for classification, source-target
pairs for encoder-decoders.

Both tasks read every example from its start, so the data is a list of id
arrays (a `Ragged`: one flat array and offsets) rather than a stream. Texts are
read by labels.py and pairs.py, which name file and line for a malformed one;
characters become ids through a character tokenizer built from every text
(training and validation, as the language model's is), or the checkpoint's for a
resumed run, in one vectorised pass.

Splits are fixed by the data alone, never by --seed, so runs with different
seeds score on the same validation examples. Labelled documents are held out
per label (stratified: each label keeps its share in both splits); a TSV of
pairs loses a random --val-frac; a built-in pair set brings its own validation
split, whose inputs run longer than any training input (pairs.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, CorpusError
from .labels import LabelSet, LabelStats, guess_source, iter_documents
from .pairs import PAIR_SETS, Pair, pair_set_files, read_pairs, split_pairs
from .reading import resolve_files
from .tokenizer import CharTokenizer, UnknownCharactersError


@dataclass(frozen=True)
class Ragged:
    """Variable-length id arrays in one flat array: example i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # (N,) int32
    offsets: np.ndarray  # (n + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, rows: Sequence[int]) -> "Ragged":
        parts = [self[i] for i in rows]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts], dtype=np.int64)])
        return Ragged(np.concatenate(parts) if parts else np.zeros(0, np.int32), offsets)


def char_table(tok: CharTokenizer) -> np.ndarray:
    """The tokenizer's characters as sorted code points (id i is the i-th)."""
    return np.array([ord(c) for c in tok.chars], dtype=np.int64)


def encode_texts(tok: CharTokenizer, texts: Sequence[str], unknown: str = "error") -> Ragged:
    """Every text's ids in one pass; characters the tokenizer lacks raise (unknown="error")
    or are dropped ("skip")."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    cps = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    table = char_table(tok)
    at = np.minimum(np.searchsorted(table, cps), max(len(table) - 1, 0))
    known = table[at] == cps if len(table) else np.zeros(len(cps), dtype=bool)
    if not known.all():
        if unknown != "skip":
            raise UnknownCharactersError(sorted({chr(int(c)) for c in np.unique(cps[~known])}))
        doc = np.repeat(np.arange(len(texts)), lengths)
        lengths = np.bincount(doc[known], minlength=len(texts)).astype(np.int64)
        at = at[known]
    return Ragged(at.astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]))


def new_tokenizer(texts: Sequence[str], eos: bool = False) -> CharTokenizer:
    return CharTokenizer(set().union(*map(set, texts)) if texts else set(), eos=eos)


# ------------------------------------------------------------ labelled documents


@dataclass(frozen=True)
class LabelledData:
    train: Ragged
    train_y: np.ndarray  # (n,) label index of each training document
    val: Ragged
    val_y: np.ndarray
    tokenizer: CharTokenizer
    labels: LabelSet
    stats: LabelStats  # of every document, both splits
    source: str  # where the labels came from: file|folder|prefix|tsv

    def summary(self) -> str:
        chars = int(self.train.lengths.sum() + self.val.lengths.sum())
        return (f"labelled documents (labels from {self.source}): {len(self.train):,} train / {len(self.val):,} validation, "
                f"{chars:,} chars, vocab {self.tokenizer.vocab_size}; {self.stats.summary()}")  # fmt: skip


def stratified_split(labels: Sequence[str], val_frac: float) -> tuple[list[int], list[int]]:
    """(train, validation) indices: each label's documents shuffled and cut at val_frac (at least
    one held out when the label has two or more and val_frac > 0); both lists shuffled."""
    rng = random.Random("classify-split")
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    train, val = [], []
    for lab in sorted(by):
        rows = by[lab]
        rng.shuffle(rows)
        n_val = round(len(rows) * val_frac)
        if val_frac > 0 and n_val == 0 and len(rows) >= 2:
            n_val = 1
        val += rows[:n_val]
        train += rows[n_val:]
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


def open_labelled(cfg: DataConfig, root: Path, tokenizer: CharTokenizer | None = None, labels: LabelSet | None = None) -> LabelledData:
    """Read, split and encode labelled documents; a resumed run passes its tokenizer and labels."""
    files, doc_sep = resolve_files(cfg, Path(root) / ".cache")
    source = cfg.label_from or guess_source(files)
    if source is None:
        raise ConfigError("--task classify needs labelled documents: say where the labels are with --label-from "
                          "file|folder|prefix|tsv (a .tsv of label<TAB>text lines is read as tsv).")  # fmt: skip
    stats = LabelStats()
    docs = [stats.add(d) for d in iter_documents(files, source, doc_sep, cfg.encoding, cfg.errors)]
    docs = [d for d in docs if d.text]
    seen = stats.labels().require(2, "classification")
    if labels is not None and seen != labels:
        raise CorpusError(f"the corpus' labels ({seen.shown()}) are not the run's ({labels.shown()}); resume on the data it trained on.")
    labels = seen
    train_i, val_i = stratified_split([d.label for d in docs], cfg.val_frac)
    texts = [d.text for d in docs]
    tok = tokenizer or new_tokenizer(texts)
    unknown = "skip" if tokenizer is not None else "error"  # a resumed run reads what it knows
    y = np.array([labels.index(d.label) for d in docs], dtype=np.int64)
    encoded = encode_texts(tok, texts, unknown)
    return LabelledData(encoded.take(train_i), y[train_i], encoded.take(val_i), y[val_i], tok, labels, stats, source)


# ------------------------------------------------------------------------ pairs


@dataclass(frozen=True)
class PairData:
    train_src: Ragged
    train_tgt: Ragged
    val_src: Ragged
    val_tgt: Ragged
    tokenizer: CharTokenizer  # with an end token: the decoder's first input and every target's end
    name: str  # the files or the built-in set

    @property
    def train_max(self) -> int:
        """The longest training source, in characters."""
        return int(self.train_src.lengths.max())

    def summary(self) -> str:
        n_chars = sum(int(r.lengths.sum()) for r in (self.train_src, self.train_tgt, self.val_src, self.val_tgt))
        return (f"{self.name}: {len(self.train_src):,} train / {len(self.val_src):,} validation pairs, {n_chars:,} chars, "
                f"vocab {self.tokenizer.vocab_size}; sources up to {self.train_max} chars in training, "
                f"{int(self.val_src.lengths.max(initial=0))} in validation")  # fmt: skip


def read_pair_splits(cfg: DataConfig, root: Path) -> tuple[list[Pair], list[Pair], str]:
    """(train, validation, name) of a built-in pair set (its own split) or of TSV files (a random --val-frac)."""
    sets = [p for p in cfg.paths if p in PAIR_SETS and not Path(p).exists()]
    if sets:
        if len(cfg.paths) > 1:
            raise ConfigError(f"the built-in pair set {sets[0]} brings its own split; train on it alone, without other files.")
        train_file, val_file = pair_set_files(sets[0], Path(root) / ".cache" / "pairs")
        return read_pairs([train_file]), read_pairs([val_file]), f"pair set {sets[0]}"
    try:
        files, _ = resolve_files(cfg, Path(root) / ".cache")
    except CorpusError as e:
        raise CorpusError(f"{e} The built-in pair sets are {', '.join(PAIR_SETS)}.") from None
    train, val = split_pairs(read_pairs(files, cfg.encoding, cfg.errors), cfg.val_frac)
    return train, val, ", ".join(f.name for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")


def open_pairs(cfg: DataConfig, root: Path, tokenizer: CharTokenizer | None = None) -> PairData:
    """Read, split and encode source-target pairs; a resumed run passes its tokenizer."""
    train, val, name = read_pair_splits(cfg, root)
    texts = [t for p in train + val for t in p]
    tok = tokenizer or new_tokenizer(texts, eos=True)
    try:
        parts = [encode_texts(tok, [getattr(p, side) for p in split]) for split in (train, val) for side in ("source", "target")]
    except UnknownCharactersError as e:
        raise CorpusError(f"the pairs hold characters the run never saw: {e}") from None
    return PairData(*parts, tokenizer=tok, name=name)
