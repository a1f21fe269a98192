"""A corpus' token ids on disk, read with pread rather than mapped into memory.

Training reads B streams a few dozen ids at a time, megabytes apart. Through a
memory map each of those reads maps the page cache's folio around it (up to a
few MB) into the process: on a 500 MB corpus the resident set grew by 70 MB
over a 10 MB one, with read-ahead off. A positioned read copies just the ids a
batch needs and leaves the rest to the page cache, so memory stays flat
whatever the corpus' size (bench/memory.py).

`TokenFile` behaves like a read-only 1-D numpy array for what charrnn asks of
it: `len`, `dtype`, slices (a view of a range; nothing is read), integers,
integer index arrays (`ids[at]`; a row of consecutive positions is one read),
and `np.asarray` / iteration, which read the whole range (for small ranges).
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import CorpusError


class _Handle:
    """One open file shared by a TokenFile and its views; closed when the last goes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        weakref.finalize(self, os.close, self.fd)

    def read(self, offset: int, size: int) -> bytes:
        chunks, done = [], 0
        while done < size:  # pread may return less than asked
            b = os.pread(self.fd, size - done, offset + done)
            if not b:  # cut short since it was opened (its size and checksum were checked then)
                raise CorpusError(
                    f"{self.path} ended {size - done} bytes early at byte {offset + done}: the cached corpus was damaged "
                    f"while in use. Run again: it will be checked and rebuilt."
                )
            chunks.append(b)
            done += len(b)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]


class TokenFile:
    def __init__(self, path: Path, dtype: np.dtype, n: int, _handle: _Handle | None = None, _start: int = 0):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self._n = int(n)
        self._start = _start
        self._h = _handle if _handle is not None else _Handle(self.path)

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    @property
    def ndim(self) -> int:
        return 1

    def _read(self, lo: int, hi: int) -> np.ndarray:
        """ids[lo:hi] of this view, 0 <= lo <= hi <= len."""
        size = self.dtype.itemsize
        if hi <= lo:
            return np.zeros(0, dtype=self.dtype)
        return np.frombuffer(self._h.read((self._start + lo) * size, (hi - lo) * size), dtype=self.dtype)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self._n)
            if step != 1:
                return np.asarray(self)[key]
            return TokenFile(self.path, self.dtype, max(hi - lo, 0), self._h, self._start + lo)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self._n if key < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"index {int(key)} is out of bounds for {self._n} ids")
            return self._read(i, i + 1)[0]
        at = np.asarray(key)
        if at.dtype.kind not in "iu":
            raise IndexError("a TokenFile takes integers, slices or arrays of integers")
        at = np.where(at < 0, at + self._n, at).astype(np.int64)
        if at.size == 0:
            return np.zeros(at.shape, dtype=self.dtype)
        if at.min() < 0 or at.max() >= self._n:
            raise IndexError(f"an index is out of bounds for {self._n} ids")
        if at.ndim == 2 and at.shape[1] > 0 and (np.diff(at, axis=1) == 1).all():
            return np.stack([self._read(int(r), int(r) + at.shape[1]) for r in at[:, 0]])  # one read a row
        lo, hi = int(at.min()), int(at.max()) + 1
        return self._read(lo, hi)[at - lo]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._read(0, self._n)
        return a if dtype is None else a.astype(dtype)

    def __iter__(self) -> Iterator[Any]:
        return iter(np.asarray(self))

    def astype(self, dtype: Any) -> np.ndarray:
        return np.asarray(self).astype(dtype)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, {self.dtype}, {self._n:,} ids from {self._start:,})"
