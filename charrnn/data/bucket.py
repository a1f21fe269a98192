"""Batches of whole examples (documents, source-target pairs), each of similar lengths.

A classifier reads each document from its start and an encoder-decoder each
pair whole, so a batch is a set of examples padded to the longest of them. To
waste little on padding, each epoch shuffles the examples, cuts them into pools
of `pool` batches, sorts each pool by length, cuts it into batches and shuffles
the batches: every batch holds neighbours in length, and the order stays random.

Everything follows from (seed, epoch), so a resumed run reads the same batches
in the same order as an uninterrupted one. With several processes, batch i of
rank r is the epoch's batch i * world + r.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorpusError


class BucketBatcher:
    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, rank: int = 0, world: int = 1, pool: int = 50,
                 what: str = "examples"):  # fmt: skip
        self.lengths = np.asarray(lengths, dtype=np.int64)
        n = len(self.lengths)
        if n < world:
            raise CorpusError(f"only {n} training {what}: too few to train on (at least {world} needed).")
        self.batch_size = min(batch_size, n // world)  # a tiny data set: one smaller batch per step
        self.seed, self.rank, self.world, self.pool = seed, rank, world, pool
        self.steps_per_epoch = n // (self.batch_size * world)
        self._epoch, self._batches = -1, np.zeros((0, self.batch_size), dtype=np.int64)

    def _order(self, epoch: int) -> np.ndarray:
        """(batches, B) example indices of an epoch, for every rank."""
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            B = self.batch_size
            used = rng.permutation(len(self.lengths))[: self.steps_per_epoch * self.world * B]
            pools = [used[i : i + B * self.pool] for i in range(0, len(used), B * self.pool)]
            sorted_ = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pools])
            batches = sorted_.reshape(-1, B)
            self._batches, self._epoch = batches[rng.permutation(len(batches))], epoch
        return self._batches

    def batch(self, epoch: int, i: int) -> np.ndarray:
        """The example indices (B,) of this rank's batch i of an epoch."""
        return self._order(epoch)[i * self.world + self.rank]


def pad(rows: list[np.ndarray], value: int, left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Id arrays -> (B, T) padded with `value` after each row (before it, with left=True), and their lengths (B,)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max(initial=1)) or 1), value, dtype=np.int64)
    for b, r in enumerate(rows):
        if len(r):
            if left:
                out[b, out.shape[1] - len(r) :] = r
            else:
                out[b, : len(r)] = r
    return out, lengths
