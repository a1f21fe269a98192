"""From files on disk to a compact array of token ids on disk (see tokenfile.py).

The text (read by reading.py) is streamed in chunks of a few MB, never held
whole, so memory does not grow with the corpus:

    pass 1  scan:    decode (strict UTF-8 by default), normalise newlines, split
                     into documents; count characters and which characters occur
    pass 2  split:   only when there are documents: find the document boundary
                     nearest the validation fraction, so the split keeps whole documents
    pass 3  encode:  the tokenizer turns each chunk into ids, written with tofile()
                     into one `ids.bin` (uint8/16/32 by vocabulary size)

The result is cached under `<checkpoints>/.cache/<key>/`, keyed on the files'
paths, sizes and modification times and on every option that changes the ids,
so a second run opens it at once.

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
from .reading import iter_corpus, resolve_files
from .tokenfile import TokenFile
from .tokenizer import EOS_CHAR, CharTokenizer, Tokenizer, tokenizer_from_state

CACHE_FORMAT = 1


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

    @property
    def train(self) -> TokenFile:
        return self.ids[: self.split]

    @property
    def val(self) -> TokenFile:
        return self.ids[self.split :]

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


def _cache_key(files: list[Path], cfg: DataConfig, doc_sep: str | None, tok_spec: object) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    spec = [CACHE_FORMAT, cfg.encoding, cfg.errors, doc_sep, cfg.val_frac, tok_spec]
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def prepare(
    cfg: DataConfig,
    cache_root: Path,
    tokenizer: Tokenizer | None = None,
    factory: TokenizerFactory = char_factory,
    tok_spec: object = "char",
) -> Corpus:
    """Read, split, encode and cache a corpus; with `tokenizer` given (a resumed
    run) the ids use that vocabulary instead of a new one."""
    cache_root = Path(cache_root) / ".cache"
    files, doc_sep = resolve_files(cfg, cache_root)
    spec = tokenizer.to_state() if tokenizer is not None else tok_spec
    key = _cache_key(files, cfg, doc_sep, _jsonable(spec))
    final = cache_root / key
    if (final / "meta.json").is_file():
        try:
            return _open(final, cached=True)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(final, ignore_errors=True)  # a damaged cache is rebuilt, never trusted

    def chunks() -> Iterator[str]:
        return iter_corpus(files, cfg, doc_sep)

    scanned = scan(chunks())
    if scanned.n_chars == 0:
        raise CorpusError(f"the corpus is empty: {_names(files)} hold no text.")
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
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        split_tok, n_tok, pos = None, 0, 0
        with open(tmp / "ids.bin", "wb") as out:
            for text in chunks():
                cut = split_char - pos
                for part in [text] if not 0 < cut < len(text) else [text[:cut], text[cut:]]:
                    if pos == split_char and split_tok is None:
                        split_tok = n_tok
                    try:
                        ids = encode_chunk(tokenizer, part)
                    except TokenizerError as e:
                        raise CorpusError(f"cannot encode the corpus with this vocabulary: {e}") from None
                    ids.astype(dtype).tofile(out)
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
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same corpus first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open(final, cached=False)


def _open(folder: Path, cached: bool) -> Corpus:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError("old cache format")
    n = int(meta["n_tokens"])
    ids = TokenFile(folder / "ids.bin", np.dtype(meta["dtype"]), n)
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
