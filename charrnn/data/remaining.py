"""Each token's remaining document length, for the length model (models/ends.py).

    r(p) = e(p) - p - 1,   e(p) the first end-of-document token after position p

At a document's start symbol (the end token of the document before) r is the
length tau of the document it starts; at its last token, 0. The array is made
from the cached ids alone, in one backward pass of blocks (each block's next
end comes from the block after it), written beside `ids.bin` as
`remaining.u1.bin` (u1/u2/u4: uint8/16/32 by the longest document) and read with positioned
reads like the ids: memory stays flat whatever the corpus' size. Made once, on
first use (two passes over the ids: the longest document picks the type); a
corpus cache that has it opens it at once.

Positions after the last end token (a split by position inside one document)
count to the end of the corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .tokenfile import TokenFile

BLOCK = 1 << 22  # ids a block


def _blocks(n: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + BLOCK, n)) for lo in range(0, n, BLOCK)]


def longest_gap(ids: TokenFile, eos: int) -> int:
    """The longest run of tokens without an end token (the largest r + 1)."""
    last, gap = -1, 0
    for lo, hi in _blocks(len(ids)):
        at = np.flatnonzero(np.asarray(ids[lo:hi]) == eos) + lo
        ends = np.concatenate([[last], at])
        if len(at):
            gap = max(gap, int(np.diff(ends).max()))
            last = int(at[-1])
    return max(gap, len(ids) - last)


DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))


def _path(folder: Path, dtype: np.dtype) -> Path:
    return Path(folder) / f"remaining.{dtype.str[1:]}.bin"  # remaining.u1.bin: the type is in the name


def remaining_file(ids: TokenFile, eos: int, folder: Path) -> TokenFile:
    """`folder/remaining.<type>.bin` for these ids, made if it is not there yet."""
    n = len(ids)
    for dtype in DTYPES:
        if _path(folder, dtype).is_file() and _path(folder, dtype).stat().st_size == n * dtype.itemsize:
            return TokenFile(_path(folder, dtype), dtype, n)
    gap = longest_gap(ids, eos)
    dtype = DTYPES[0] if gap <= 1 << 8 else DTYPES[1] if gap <= 1 << 16 else DTYPES[2]
    path = _path(folder, dtype)
    tmp = path.with_name(f".remaining.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.truncate(n * dtype.itemsize)
            nxt = n  # the next end token after the current block (none: the corpus' end)
            for lo, hi in reversed(_blocks(n)):
                block = np.asarray(ids[lo:hi])
                ends = np.flatnonzero(block == eos) + lo  # (K,) sorted
                pos = np.arange(lo, hi, dtype=np.int64)
                k = np.searchsorted(ends, pos, side="right")  # the first end after each position
                after = np.where(k < len(ends), ends[np.minimum(k, len(ends) - 1)] if len(ends) else nxt, nxt)
                f.seek(lo * dtype.itemsize)
                (after - pos - 1).astype(dtype).tofile(f)
                if len(ends):
                    nxt = int(ends[0])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return TokenFile(path, dtype, n)


def document_starts(ids: TokenFile, remaining: TokenFile, eos: int, labels: TokenFile | None = None):  # type: ignore[no-untyped-def]
    """(lengths, labels or None) of the documents that start in `ids` (after an end
    token; the first document of the corpus has none), a block at a time."""
    n = len(ids)
    for lo, hi in _blocks(n):
        at = np.flatnonzero(np.asarray(ids[lo:hi]) == eos) + lo
        at = at[at + 1 < n]
        if len(at):
            yield np.asarray(remaining[at]).astype(np.int64), None if labels is None else np.asarray(labels[at + 1]).astype(np.int64)
