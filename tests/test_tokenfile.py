import numpy as np
import pytest

from charrnn.data.batches import BLOCK, StreamBatcher, eval_batches
from charrnn.data.tokenfile import TokenFile


@pytest.fixture(params=[np.uint8, np.uint16, np.uint32])
def pair(request, tmp_path):
    """The same ids as a numpy array and as a TokenFile over a file that holds them."""
    a = np.random.default_rng(0).integers(0, 250, 5_000).astype(request.param)
    path = tmp_path / "ids.bin"
    a.tofile(path)
    return a, TokenFile(path, a.dtype, len(a))


def test_reads_like_the_array(pair):
    a, f = pair
    assert len(f) == len(a) and f.dtype == a.dtype and f.shape == a.shape
    np.testing.assert_array_equal(np.asarray(f), a)
    assert f[0] == a[0] and f[-1] == a[-1] and f[1234] == a[1234]
    for s in (slice(10, 300), slice(None, 7), slice(4_990, None), slice(100, 50), slice(-20, None), slice(0, 100, 3)):
        np.testing.assert_array_equal(np.asarray(f[s]), a[s])
    view = f[1000:2000][100:200]  # a view of a view reads the right range
    np.testing.assert_array_equal(np.asarray(view), a[1100:1200])
    assert view[-1] == a[1199] and list(view)[:3] == list(a[1100:1103])
    np.testing.assert_array_equal(f.astype(np.int64), a.astype(np.int64))


def test_index_arrays(pair):
    a, f = pair
    windows = np.array([0, 700, 4_000])[:, None] + np.arange(65)[None, :]  # rows of consecutive positions
    np.testing.assert_array_equal(f[windows], a[windows])
    scattered = np.array([[5, 3, 4_999], [0, 0, 17]])
    np.testing.assert_array_equal(f[scattered], a[scattered])
    np.testing.assert_array_equal(f[200:400][np.array([0, 199, -1])], a[200:400][np.array([0, 199, -1])])
    assert f[np.zeros((0, 4), dtype=np.int64)].shape == (0, 4)


def test_out_of_bounds_is_an_index_error(pair):
    _, f = pair
    for bad in (5_000, -5_001):
        with pytest.raises(IndexError):
            f[bad]
    with pytest.raises(IndexError):
        f[np.array([[4_990, 5_000]])]
    with pytest.raises(IndexError):
        f[10:20][10]
    with pytest.raises(IndexError):
        f[np.array([0.5])]


def test_batches_and_evaluation_streams_match_the_array(pair):
    a, f = pair
    for ids_a, ids_f in ((a, f), (a[:4_000], f[:4_000])):
        ba, bf = StreamBatcher(ids_a, 4, 16, seed=3), StreamBatcher(ids_f, 4, 16, seed=3)
        for epoch, i in ((0, 0), (1, 5), (2, ba.steps_per_epoch - 1)):
            for xa, xf in zip(ba.batch(epoch, i), bf.batch(epoch, i)):
                np.testing.assert_array_equal(xa, xf)
        for (xa, ya), (xf, yf) in zip(eval_batches(ids_a, 1_000, 4, 16), eval_batches(ids_f, 1_000, 4, 16), strict=True):
            np.testing.assert_array_equal(xa, xf)
            np.testing.assert_array_equal(ya, yf)


def test_block_reads_serve_every_window_in_any_order(pair):
    """Batches come from blocks of BLOCK steps read at once; in order, backwards or
    jumping (a resumed run), each is the window the streams define."""
    a, f = pair
    b = StreamBatcher(f, 3, 5, seed=1)
    assert b.steps_per_epoch > 2 * BLOCK
    order = [*range(b.steps_per_epoch), *reversed(range(0, b.steps_per_epoch, 7)), BLOCK - 1, BLOCK, 2 * BLOCK + 3]
    for epoch in (0, 1):
        for i in order:
            at = b.starts + b.offset(epoch) + i * 5 + np.arange(6)[None, :]
            x, y = b.batch(epoch, i)
            np.testing.assert_array_equal(x, a[at][:, :-1])
            np.testing.assert_array_equal(y, a[at][:, 1:])
            assert x.dtype == np.int64 and x.flags.c_contiguous
    for bad in (-1, b.steps_per_epoch):  # the trainer wraps to the next epoch before this
        with pytest.raises(IndexError):
            b.batch(0, bad)
