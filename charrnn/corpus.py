"""From files on disk to a compact array of token ids, read through a memmap.

The text is streamed in chunks of a few MB, never held whole, so memory does not
grow with the corpus:

    pass 1  scan:    decode (strict UTF-8 by default), normalise newlines, split
                     into documents; count characters and which characters occur
    pass 2  split:   only when there are documents: find the document boundary
                     nearest the validation fraction, so the split keeps whole documents
    pass 3  encode:  the tokenizer turns each chunk into ids, written with tofile()
                     into one `ids.bin` (uint8/16/32 by vocabulary size)

The result is cached under `<checkpoints>/.cache/<key>/`, keyed on the files'
paths, sizes and modification times and on every option that changes the ids,
so a second run opens the memmap at once.

Inside the pipeline an end of document is the NUL character (binary files, the
only source of NUL, are refused when read); the tokenizer maps it to its EOS id.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .builtin import BUILTINS
from .config import DataConfig
from .errors import CorpusError, TokenizerError
from .tokenizer import EOS_CHAR, CharTokenizer, Tokenizer, tokenizer_from_state

CHUNK_BYTES = 1 << 22  # 4 MiB of the file at a time
CACHE_FORMAT = 1


# --------------------------------------------------------------------- files


def resolve_files(cfg: DataConfig, cache_root: Path) -> tuple[list[Path], str | None]:
    """The files a corpus argument names, and the document separator to use.

    A path may be a file or a directory (searched recursively with --glob); a name
    that is not a path but a built-in corpus stands for that corpus' files.
    """
    files: list[Path] = []
    doc_sep = cfg.doc_sep
    for arg in cfg.paths:
        p = Path(arg).expanduser()
        if p.is_dir():
            found = sorted(
                f for f in p.rglob(cfg.glob) if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise CorpusError(f"{arg}: no files in this folder match --glob {cfg.glob!r}.")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise CorpusError(f"{arg}: not a regular file or folder.")
        elif arg in BUILTINS:
            b = BUILTINS[arg]
            files.extend(b.files(cache_root / "corpora"))
            if doc_sep is None:
                doc_sep = b.doc_sep
        else:
            names = ", ".join(BUILTINS)
            raise CorpusError(f"{arg}: no such file or folder (the built-in corpora are {names}).")
    if not files:
        raise CorpusError("no corpus given: name one or more files, folders or built-in corpora.")
    return files, doc_sep


def _is_ascii_compatible(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return not (name.startswith("utf-16") or name.startswith("utf-32"))


def iter_file_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> Iterator[str]:
    """Decoded text of one file in chunks: BOM dropped, CRLF and CR turned into LF.

    A decoding error names the byte offset in the file; NUL bytes mark a binary file.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    check_raw_nul = _is_ascii_compatible(encoding)
    offset, first, held_cr = 0, True, ""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read it ({e.strerror}).") from None
    with f:
        while True:
            raw = f.read(CHUNK_BYTES)
            final = not raw
            if check_raw_nul and (nul := raw.find(b"\x00")) >= 0:
                raise _binary(path, offset + nul)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final)
            except UnicodeDecodeError as e:
                at = offset - pending + e.start
                raise CorpusError(
                    f"{path}: not valid {e.encoding.upper()} at byte {at} (0x{e.object[e.start]:02x}). "
                    "If the file uses another encoding pass --encoding (for example latin-1); "
                    "to replace bad bytes pass --errors replace."
                ) from None
            offset += len(raw)
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            if EOS_CHAR in text:
                raise _binary(path, None)
            text = held_cr + text
            held_cr = ""
            if text.endswith("\r") and not final:
                text, held_cr = text[:-1], "\r"  # maybe the first half of a CRLF
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if text:
                yield text
            if final:
                return


def _binary(path: Path, at: int | None) -> CorpusError:
    where = f" (a NUL byte at byte {at})" if at is not None else ""
    return CorpusError(f"{path} looks like a binary file{where}; charrnn trains on text files.")


class _DocSplitter:
    """Turns one file's text into documents, each ended by EOS_CHAR.

    Modes: None (one stream, no documents), "file" (each file is a document),
    "line" (each non-empty line), "blank" (paragraphs between blank lines), or a
    literal separator that stands alone on its line (`%` in fortune files).
    A document's own text never ends with the separator's newline; empty
    documents vanish.
    """

    def __init__(self, mode: str | None):
        self.mode = mode
        self.partial = ""  # an unfinished line, carried to the next chunk
        self.doc_len = 0  # characters emitted in the current document
        self.docs = 0

    def feed(self, text: str) -> str:
        if self.mode is None or self.mode == "file":
            self.doc_len += len(text)
            return text
        text = self.partial + text
        cut = text.rfind("\n")
        if cut < 0:
            self.partial = text
            return ""
        self.partial = text[cut + 1 :]
        return self._lines(text[:cut].split("\n"))

    def end(self) -> str:
        out = ""
        if self.mode not in (None, "file") and self.partial:
            out = self._lines([self.partial])
            self.partial = ""
        if self.mode is not None and self.doc_len:
            out += EOS_CHAR
            self.docs += 1
            self.doc_len = 0
        return out

    def _lines(self, lines: list[str]) -> str:
        out: list[str] = []
        mode = self.mode
        for line in lines:
            if mode == "line":
                is_sep = not line
            elif mode == "blank":
                is_sep = not line.strip()
            else:
                is_sep = line.rstrip() == mode
            if is_sep:
                if self.doc_len:
                    out.append(EOS_CHAR)
                    self.docs += 1
                    self.doc_len = 0
                continue
            if mode == "line":
                out.append(line + EOS_CHAR)
                self.docs += 1
                continue
            if self.doc_len:
                out.append("\n")
            out.append(line)
            self.doc_len += len(line) + 1
        return "".join(out)


def iter_corpus(files: list[Path], cfg: DataConfig, doc_sep: str | None) -> Iterator[str]:
    """The whole corpus as text chunks (EOS_CHAR between documents), each ending
    at a line or document boundary where the text allows it."""
    file_end = object()

    def pieces() -> Iterator[object]:
        for i, path in enumerate(files):
            splitter = _DocSplitter(doc_sep)
            for text in iter_file_text(path, cfg.encoding, cfg.errors):
                yield splitter.feed(text)
            yield splitter.end()
            if doc_sep is None and i < len(files) - 1:
                yield file_end

    carry, last = "", ""
    for piece in pieces():
        if piece is file_end:  # one stream of several files: keep them on separate lines
            piece = "\n" if last not in ("", "\n") else ""
        assert isinstance(piece, str)
        if not piece:
            continue
        last = piece[-1]
        text = carry + piece
        cut = max(text.rfind("\n"), text.rfind(EOS_CHAR))
        if cut < 0 and len(text) < CHUNK_BYTES:
            carry = text
            continue
        cut = len(text) - 1 if cut < 0 else cut
        carry = text[cut + 1 :]
        yield text[: cut + 1]
    if carry:
        yield carry


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
    ids: np.ndarray  # memmap over ids.bin
    split: int  # token index where validation starts
    chars_train: int
    chars_val: int
    n_docs: int
    files: list[str]
    split_by: str
    cache_dir: Path
    cached: bool

    @property
    def train(self) -> np.ndarray:
        return self.ids[: self.split]

    @property
    def val(self) -> np.ndarray:
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
    from . import spm

    return spm.factory(cfg)


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
    ids = np.memmap(folder / "ids.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(n,))
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
