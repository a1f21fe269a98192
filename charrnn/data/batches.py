"""Batches for truncated backpropagation through time.

The training ids are cut into B contiguous streams (one per batch row; with
several processes, B per rank and no two ranks sharing one). Batch i of an epoch
is the i-th window of T tokens of every stream, so row b of batch i continues
exactly where row b of batch i-1 stopped, and the hidden state can be carried
from one batch to the next (detached: gradients flow back T steps, the state
flows forward through the whole epoch). Each epoch starts at a random offset
inside the slack the streams leave, so window boundaries move between epochs;
the offset comes from (seed, epoch) alone, so a resumed run sees the same batches.

Arrays parallel to the ids (`sides`: each token's label, its remaining document
length) are read through the very same windows, so a batch carries them per
timestep and a stream switches label where its document changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import CorpusError

BLOCK = 64  # training steps whose windows are read together


@dataclass
class StreamBatcher:
    ids: Any  # (N,) training ids: a TokenFile or an array
    batch_size: int  # B: rows on this rank
    seq_len: int  # T
    seed: int = 0
    rank: int = 0
    world: int = 1
    sides: tuple[Any, ...] = ()  # arrays parallel to `ids`, read through the same windows (windows())

    def __post_init__(self) -> None:
        B, T, W = self.batch_size, self.seq_len, self.world
        self.stream_len = len(self.ids) // (B * W)
        if self.stream_len < T + 1:
            need = B * W * (T + 1)
            raise CorpusError(
                f"the training split has {len(self.ids):,} tokens, too few for one batch of "
                f"{B * W} x {T + 1} ({need:,} tokens). Use a smaller --batch-size or --seq-len, or a larger corpus."
            )
        self.steps_per_epoch = (self.stream_len - 1) // T
        self.slack = self.stream_len - 1 - self.steps_per_epoch * T  # in [0, T)
        first = self.rank * B
        self.starts = (np.arange(first, first + B, dtype=np.int64) * self.stream_len)[:, None]  # (B, 1)
        self._offsets: dict[int, int] = {}
        self._block_key: tuple[int, int] | None = None
        self._blocks: list[np.ndarray] = []

    @property
    def tokens_per_step(self) -> int:
        """Tokens predicted per optimizer step over all ranks."""
        return self.batch_size * self.world * self.seq_len

    def offset(self, epoch: int) -> int:
        if self.slack == 0:
            return 0
        if epoch not in self._offsets:
            self._offsets[epoch] = int(np.random.default_rng([self.seed, epoch]).integers(0, self.slack + 1))
        return self._offsets[epoch]

    def batch(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        """x, y (B, T) int64: inputs and the next-token targets (teacher forcing)."""
        chunk = self.windows(epoch, i)[0]  # (B, T+1), a view; the block is never written
        return np.ascontiguousarray(chunk[:, :-1]), np.ascontiguousarray(chunk[:, 1:])

    def windows(self, epoch: int, i: int) -> list[np.ndarray]:
        """The (B, T+1) int64 windows of batch i: the ids', then each side array's (views).

        The windows of BLOCK steps are read at once, one read per row, and served
        from memory: the ids stay on disk, and a step costs no system call."""
        T = self.seq_len
        if not 0 <= i < self.steps_per_epoch:
            raise IndexError(f"batch {i} of an epoch of {self.steps_per_epoch}")
        first = i - i % BLOCK
        n = min(BLOCK, self.steps_per_epoch - first)
        if self._block_key != (epoch, first):
            at = self.starts + self.offset(epoch) + first * T + np.arange(n * T + 1, dtype=np.int64)[None, :]  # (B, nT+1)
            self._blocks = [np.asarray(a[at], dtype=np.int64) for a in (self.ids, *self.sides)]
            self._block_key = (epoch, first)
        j = (i - first) * T
        return [b[:, j : j + T + 1] for b in self._blocks]


def eval_batches(ids: Any, max_tokens: int, streams: int, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Validation in carried-state streams, the way char-rnn scores a split.

    When the split fits in `max_tokens`, `streams` contiguous streams cover all of
    it; otherwise the streams start at evenly spaced points and each reads
    max_tokens / streams tokens: a fixed, representative slice, the same at every
    evaluation so the numbers compare.
    """
    for (chunk,) in eval_windows((ids,), max_tokens, streams, seq_len):
        yield chunk[:, :-1], chunk[:, 1:]


def eval_windows(arrays: tuple[Any, ...], max_tokens: int, streams: int, seq_len: int) -> Iterator[tuple[np.ndarray, ...]]:
    """eval_batches' windows, (streams, t+1) int64, of the ids (arrays[0]) and of
    the arrays parallel to them, read at the same positions."""
    ids = arrays[0]
    n = len(ids)
    if n < 2:
        return
    streams = max(1, min(streams, (n - 1) // 2))
    if n <= max_tokens:
        length = n // streams
        starts = np.arange(streams, dtype=np.int64) * length
    else:
        length = max(2, max_tokens // streams)
        starts = np.linspace(0, n - length, streams).astype(np.int64)
    for t0 in range(0, length - 1, seq_len):
        t = min(seq_len, length - 1 - t0)
        at = starts[:, None] + t0 + np.arange(t + 1, dtype=np.int64)[None, :]
        yield tuple(np.asarray(a[at], dtype=np.int64) for a in arrays)
