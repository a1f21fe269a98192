"""From files to text: which files a corpus names, decoded and normalised, split
into documents, and streamed in chunks of a few MB.

Strict UTF-8 by default (any codec with --encoding); a BOM is dropped, CRLF and
CR become LF. An end of document is the NUL character (EOS_CHAR) in the chunks;
binary files, the only source of NUL, are refused.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Iterator

from ..config import DataConfig
from ..errors import CorpusError
from .builtin import BUILTINS, find
from .tokenizer import EOS_CHAR

CHUNK_BYTES = 1 << 22  # 4 MiB of the file at a time


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
        elif (b := find(arg)) is not None:
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
            except UnicodeError as e:  # e.g. "UTF-16 stream does not start with BOM"
                raise CorpusError(f"{path}: cannot decode it as {encoding}: {e}. Pass the file's --encoding (utf-16-le, utf-16-be, ...).") from None
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


def iter_lines(path: Path, encoding: str = "utf-8", errors: str = "strict") -> Iterator[tuple[int, str]]:
    """Each line of one file as (1-based line number, text without its newline),
    decoded and normalised as by iter_file_text; a last line without a newline counts."""
    partial, n = "", 0
    for text in iter_file_text(path, encoding, errors):
        lines = (partial + text).split("\n")
        partial = lines.pop()
        for n, line in enumerate(lines, n + 1):
            yield n, line
    if partial:
        yield n + 1, partial


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

    With `starts=True` it also records the 1-based line on which each document
    begins, appended to `self.starts` (the caller drains it), for messages that
    name a document's line; the language-model pipeline leaves it off.
    """

    def __init__(self, mode: str | None, starts: bool = False):
        self.mode = mode
        self.partial = ""  # an unfinished line, carried to the next chunk
        self.doc_len = 0  # characters emitted in the current document
        self.docs = 0
        self.lines = 0  # input lines seen so far (counted only when recording starts)
        self.starts: list[int] | None = [] if starts else None

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

    def _note_starts(self, lines: list[str]) -> None:
        # Which of these lines begin a document, by the same rules as _lines; a loop
        # of its own, so the language-model pipeline's loop pays nothing for it.
        mode, starts = self.mode, self.starts
        assert starts is not None
        separates = {"line": lambda s: not s, "blank": lambda s: not s.strip()}.get(mode, lambda s: s.rstrip() == mode)
        is_open = self.doc_len > 0
        for n, line in enumerate(lines, self.lines + 1):
            if separates(line):
                is_open = False
            elif mode == "line" or not is_open:
                starts.append(n)
                is_open = True
        self.lines += len(lines)

    def _lines(self, lines: list[str]) -> str:
        if self.starts is not None:
            self._note_starts(lines)
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
