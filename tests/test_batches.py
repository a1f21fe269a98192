import numpy as np
import pytest

from charrnn.data.batches import StreamBatcher, eval_batches
from charrnn.errors import CorpusError


def test_rows_are_contiguous_streams_across_batches():
    ids = np.arange(1000, dtype=np.uint16)
    b = StreamBatcher(ids, batch_size=4, seq_len=10, seed=3)
    x0, y0 = b.batch(0, 0)
    x1, _ = b.batch(0, 1)
    assert x0.shape == (4, 10) and x0.dtype == np.int64
    assert np.array_equal(y0[:, :-1], x0[:, 1:])  # teacher forcing: targets are the next tokens
    assert np.array_equal(x1[:, 0], y0[:, -1])  # row b of batch 1 goes on where row b of batch 0 stopped
    assert np.all(np.diff(x0[:, 0]) == b.stream_len)  # rows are far-apart streams


def test_epoch_offsets_are_deterministic_and_bounded():
    ids = np.arange(1000, dtype=np.uint16)
    b = StreamBatcher(ids, batch_size=4, seq_len=7, seed=1)
    offsets = {b.offset(e) for e in range(20)}
    assert offsets <= set(range(b.slack + 1)) and len(offsets) > 1
    assert StreamBatcher(ids, 4, 7, seed=1).offset(5) == b.offset(5)
    last_x, last_y = b.batch(19, b.steps_per_epoch - 1)
    # ids are positions: the last target of row r is the offset plus a whole epoch of windows into stream r
    want = np.arange(4) * b.stream_len + b.offset(19) + b.steps_per_epoch * 7
    assert np.array_equal(last_y[:, -1], want)
    assert (want < np.arange(1, 5) * b.stream_len).all()  # never past the end of its own stream


def test_ranks_read_disjoint_streams():
    ids = np.arange(1200, dtype=np.uint16)
    seen = []
    for rank in range(2):
        b = StreamBatcher(ids, batch_size=3, seq_len=5, rank=rank, world=2)
        seen.append({int(v) for i in range(b.steps_per_epoch) for v in b.batch(0, i)[0].ravel()})
    assert not seen[0] & seen[1]


def test_too_small_for_one_batch():
    with pytest.raises(CorpusError, match="too few for one batch"):
        StreamBatcher(np.arange(50), batch_size=4, seq_len=16)


def test_eval_batches_cover_a_small_split_exactly():
    ids = np.arange(100)
    got = list(eval_batches(ids, max_tokens=10_000, streams=4, seq_len=8))
    xs = np.concatenate([x for x, _ in got], axis=1)
    ys = np.concatenate([y for _, y in got], axis=1)
    assert xs.shape[0] == 4
    assert np.array_equal(ys, xs + 1)  # each stream is contiguous, carried across chunks
    assert xs.size == 4 * 24  # 4 streams of 25 tokens: 24 predictions each


def test_eval_batches_take_a_fixed_spread_slice_of_a_large_split():
    ids = np.arange(100_000)
    a = list(eval_batches(ids, max_tokens=800, streams=4, seq_len=50))
    b = list(eval_batches(ids, max_tokens=800, streams=4, seq_len=50))
    assert all(np.array_equal(x1, x2) for (x1, _), (x2, _) in zip(a, b))
    starts = a[0][0][:, 0]
    assert starts[0] == 0 and starts[-1] > 90_000  # spread over the split, not just its head
    assert sum(x.size for x, _ in a) <= 800
