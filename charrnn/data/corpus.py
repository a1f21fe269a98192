"""From files on disk to a compact array of token ids on disk (see tokenfile.py).

The text (read by reading.py) is streamed in chunks of a few MB, never held
whole, so memory does not grow with the corpus:

    pass 1  scan:    decode (strict UTF-8 by default), normalise newlines, split
                     into documents; count characters and which characters occur
    pass 2  split:   only when there are documents: find the document boundary
                     nearest the validation fraction, so the split keeps whole documents
    pass 3  encode:  the tokenizer turns each chunk into ids, appended to one
                     `ids.bin` (uint8/16/32 by vocabulary size) and to its checksum

The result is cached under `<checkpoints>/.cache/<key>/`, keyed on the files'
paths, sizes and modification times and on every option that changes the ids,
so a second run opens it at once. It is built in a temporary folder renamed into
place last, so a build killed half-way is never found; `meta.json` records each
array's size and CRC-32, checked before every use (35 ms of CPU per 100 MB,
bench/cache_check.py), so a cache cut short or damaged later (a full disk, a copy
interrupted) is rebuilt, with a notice in the corpus line, rather than trusted.

Labelled documents (`--label-from`, labelled.py) take the same passes; the
encoding pass also writes `labels.bin`, each token's label, parallel to the ids.

Inside the pipeline an end of document is the NUL character (binary files, the
only source of NUL, are refused when read); the tokenizer maps it to its EOS id.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..config import DataConfig
from ..errors import CorpusError, TokenizerError
from .cachecheck import Checksum, clear_abandoned, damage, verify
from .labelled import LabelledSource, label_dtype, token_labels
from .labels import LabelSet, LabelStats
from .reading import iter_corpus, resolve_files
from .tokenfile import TokenFile
from .tokenizer import EOS_CHAR, CharTokenizer, Tokenizer, tokenizer_from_state

CACHE_FORMAT = 2  # 2: meta.json holds the arrays' sizes and checksums


# ------------------------------------------------------------------- passes


@dataclass(frozen=True)
class Scan:
    n_chars: int
    counts: np.ndarray  # occurrences of each code point (index = code point)
    n_docs: int

    def codepoints(self) -> np.ndarray:
        return np.flatnonzero(self.counts)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def scan(chunks: Iterable[str]) -> Scan:
    counts = np.zeros(128, dtype=np.int64)
    n = docs = 0
    for text in chunks:
        cps = _codepoints(text)
        c = np.bincount(cps)
        if len(c) > len(counts):
            counts = np.pad(counts, (0, len(c) - len(counts)))
        counts[: len(c)] += c
        n += len(cps)
        docs += text.count(EOS_CHAR)
    return Scan(n, counts, docs)


def locate_split(chunks: Iterable[str], n_chars: int, val_frac: float, has_docs: bool) -> tuple[int, str]:
    """Where the validation split starts, in characters, and how it was chosen.

    By position (the last `val_frac` of the text, as nanoGPT's shakespeare_char
    does); with documents, at the first document boundary at or after that
    point, or the last one before it, so no document is cut in two.
    """
    target = n_chars - round(n_chars * val_frac)
    if val_frac == 0 or not has_docs:
        return target, "position"
    before, pos = -1, 0
    for text in chunks:
        at = text.find(EOS_CHAR)
        while at >= 0:
            end = pos + at + 1  # a split just after this EOS
            if end >= target:
                if end < n_chars:
                    return end, "documents"
                break
            before = end
            at = text.find(EOS_CHAR, at + 1)
        pos += len(text)
    if before > 0:
        return before, "documents"
    return target, "position (one document only)"


def token_dtype(vocab_size: int) -> np.dtype:
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def encode_chunk(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Corpus text (EOS_CHAR between documents) -> ids; characters outside the
    vocabulary raise TokenizerError."""
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.encode_codepoints(_codepoints(text).astype(np.int64))
    return tokenizer.encode_corpus(text)  # type: ignore[attr-defined]


# ------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    """Encoded ids of a corpus split into train and validation, and its tokenizer."""

    tokenizer: Tokenizer
    ids: TokenFile  # ids.bin, read as needed
    split: int  # token index where validation starts
    chars_train: int
    chars_val: int
    n_docs: int
    files: list[str]
    split_by: str
    cache_dir: Path
    cached: bool
    labels: TokenFile | None = None  # labels.bin: each token's label (labelled documents only)
    label_set: LabelSet | None = None
    label_stats: LabelStats | None = None  # documents and characters per label, the whole corpus
    notice: str | None = None  # e.g. a damaged cache found and rebuilt

    @property
    def train(self) -> TokenFile:
        return self.ids[: self.split]

    @property
    def val(self) -> TokenFile:
        return self.ids[self.split :]

    @property
    def train_labels(self) -> TokenFile | None:
        return None if self.labels is None else self.labels[: self.split]

    @property
    def val_labels(self) -> TokenFile | None:
        return None if self.labels is None else self.labels[self.split :]

    def summary(self) -> str:
        n_tok = len(self.ids)
        chars = self.chars_train + self.chars_val
        val_pct = 100.0 * self.chars_val / max(chars, 1)
        files = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        docs = f", {self.n_docs:,} documents" if self.n_docs else ""
        tok = "" if self.tokenizer.kind == "char" else f" ({n_tok:,} tokens, {chars / max(n_tok, 1):.2f} chars/token)"
        note = getattr(self.tokenizer, "note", None)  # e.g. a vocabulary lowered to fit the corpus
        return (
            f"corpus: {files}, {chars:,} characters{tok}{docs}, vocabulary {self.tokenizer.vocab_size}; "
            f"train {self.chars_train:,} / validation {self.chars_val:,} characters "
            f"({val_pct:.0f}%, split by {self.split_by}){' [cached]' if self.cached else ''}"
            + (f"; {note}" if note else "")
            + (f"; {self.label_stats.summary()}" if self.label_stats is not None else "")
            + (f"; {self.notice}" if self.notice else "")
        )


TokenizerFactory = Callable[[Scan, Callable[[], Iterator[str]]], Tokenizer]


def char_factory(scanned: Scan, train_text: Callable[[], Iterator[str]]) -> Tokenizer:
    return CharTokenizer.from_codepoints(scanned.codepoints())


def factory_for(cfg: DataConfig) -> tuple[TokenizerFactory, object]:
    """The tokenizer factory a data config asks for, and the spec that keys the cache."""
    if cfg.tokenizer == "char":
        return char_factory, "char"
    from . import spm_train

    return spm_train.factory(cfg)


def _cache_key(files: list[Path], cfg: DataConfig, doc_sep: str | None, tok_spec: object, labels: object = None) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    spec = [CACHE_FORMAT, cfg.encoding, cfg.errors, doc_sep, cfg.val_frac, tok_spec]
    if cfg.label_from is not None:  # (only then: the keys of unlabelled corpora stay what they were)
        spec += [cfg.label_from, labels]
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def prepare(
    cfg: DataConfig,
    cache_root: Path,
    tokenizer: Tokenizer | None = None,
    factory: TokenizerFactory = char_factory,
    tok_spec: object = "char",
    labels: LabelSet | None = None,
) -> Corpus:
    """Read, split, encode and cache a corpus; with `tokenizer` given (a resumed
    run) the ids use that vocabulary instead of a new one, and with `labels` (a
    resumed labelled run) the labels keep that run's indices."""
    cache_root = Path(cache_root) / ".cache"
    files, doc_sep = resolve_files(cfg, cache_root)
    spec = tokenizer.to_state() if tokenizer is not None else tok_spec
    key = _cache_key(files, cfg, doc_sep, _jsonable(spec), labels.to_state() if labels is not None else None)
    final = cache_root / key
    notice = None
    if final.is_dir():
        try:
            return _open(final, cached=True)
        except (OSError, ValueError, KeyError, TypeError) as e:  # a damaged cache is rebuilt, never trusted
            notice = f"rebuilt the corpus cache, which was damaged ({damage(e)})"
            shutil.rmtree(final, ignore_errors=True)

    source = LabelledSource(files, cfg, doc_sep, labels) if cfg.label_from is not None else None

    def chunks() -> Iterator[str]:
        return source.texts() if source is not None else iter_corpus(files, cfg, doc_sep)

    scanned = scan(chunks())
    if scanned.n_chars == 0:
        raise CorpusError(f"the corpus is empty: {_names(files)} hold no text.")
    label_set = source.settle() if source is not None else None
    split_char, split_by = locate_split(chunks(), scanned.n_chars, cfg.val_frac, scanned.n_docs > 0)

    def train_text() -> Iterator[str]:
        left = split_char
        for text in chunks():
            if left <= 0:
                return
            yield text[:left]
            left -= len(text)

    if tokenizer is None:
        tokenizer = factory(scanned, train_text)
    dtype = token_dtype(tokenizer.vocab_size)
    tmp = cache_root / f".tmp-{key}-{os.getpid()}"
    clear_abandoned(cache_root, key)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pairs: Iterator[tuple[str, list[int] | None]] = source.pairs() if source is not None else ((t, None) for t in chunks())
    try:
        split_tok, n_tok, pos = None, 0, 0
        ids_sum, lab_sum = Checksum(), Checksum()
        with open(tmp / "ids.bin", "wb") as out, open(tmp / "labels.bin" if label_set is not None else os.devnull, "wb") as lab_out:
            for text, doc_labels in pairs:
                cut = split_char - pos
                first = 0  # the chunk's document the next part begins in
                for part in [text] if not 0 < cut < len(text) else [text[:cut], text[cut:]]:
                    if pos == split_char and split_tok is None:
                        split_tok = n_tok
                    try:
                        ids = encode_chunk(tokenizer, part)
                    except TokenizerError as e:
                        raise CorpusError(f"cannot encode the corpus with this vocabulary: {e}") from None
                    out.write(ids_sum.add(ids.astype(dtype)))
                    if label_set is not None and doc_labels is not None:
                        lab, first = token_labels(ids, tokenizer.eos_id, doc_labels, first)  # type: ignore[arg-type]
                        lab_out.write(lab_sum.add(lab.astype(label_dtype(len(label_set)))))
                    n_tok += len(ids)
                    pos += len(part)
        if split_tok is None:
            split_tok = n_tok
        meta = {
            "format": CACHE_FORMAT,
            "dtype": dtype.str,
            "n_tokens": n_tok,
            "split": split_tok,
            "chars_train": split_char,
            "chars_val": scanned.n_chars - split_char,
            "n_docs": scanned.n_docs,
            "files": [str(f) for f in files],
            "split_by": split_by,
            "tokenizer": _jsonable(tokenizer.to_state()),
            "ids.bin": ids_sum.record(),
        }
        if label_set is not None and source is not None:
            meta.update(labels=label_set.to_state(), label_stats=source.stats.to_state(), **{"labels.bin": lab_sum.record()})
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same corpus first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    corpus = _open(final, cached=False)
    corpus.notice = notice
    return corpus


def _open(folder: Path, cached: bool) -> Corpus:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        raise ValueError("it was written by another version of charrnn")
    n = int(meta["n_tokens"])
    if n * np.dtype(meta["dtype"]).itemsize != int(meta["ids.bin"]["bytes"]):
        raise ValueError("meta.json does not agree with itself")
    verify(folder / "ids.bin", meta["ids.bin"])
    if "labels" in meta:
        verify(folder / "labels.bin", meta["labels.bin"])
    ids = TokenFile(folder / "ids.bin", np.dtype(meta["dtype"]), n)
    labelled = {}
    if "labels" in meta:
        label_set = LabelSet.from_state(meta["labels"])
        labelled = dict(labels=TokenFile(folder / "labels.bin", label_dtype(len(label_set)), n), label_set=label_set,
                        label_stats=LabelStats.from_state(meta["label_stats"]))  # fmt: skip
    return Corpus(
        tokenizer=tokenizer_from_state(_unjsonable(meta["tokenizer"])),
        ids=ids,
        split=int(meta["split"]),
        chars_train=int(meta["chars_train"]),
        chars_val=int(meta["chars_val"]),
        n_docs=int(meta["n_docs"]),
        files=list(meta["files"]),
        split_by=meta["split_by"],
        cache_dir=folder,
        cached=cached,
        **labelled,  # type: ignore[arg-type]
    )


def _names(files: list[Path]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{len(files)} files"


def _jsonable(state: object) -> object:
    """Tokenizer states may hold bytes (a sentencepiece model): store them as hex."""
    if isinstance(state, dict):
        return {k: _jsonable(v) for k, v in state.items()}
    if isinstance(state, (bytes, bytearray)):
        return {"__bytes__": bytes(state).hex()}
    if isinstance(state, (list, tuple)):
        return [_jsonable(v) for v in state]
    return state


def _unjsonable(state: object) -> object:
    if isinstance(state, dict):
        if set(state) == {"__bytes__"}:
            return bytes.fromhex(state["__bytes__"])
        return {k: _unjsonable(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_unjsonable(v) for v in state]
    return state
