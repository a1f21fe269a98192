"""The long-range corpora's settings (longrange-copy:gap=200, longrange-brackets:depth=4),
their exact figures against brute force on tiny instances, and the truncation-window note."""

from __future__ import annotations

import math

import pytest

from charrnn.config import DataConfig, TrainConfig
from charrnn.data import window
from charrnn.data.longrange import Brackets, Copy, parse, write
from charrnn.data.reading import resolve_files
from charrnn.errors import CorpusError


def test_settings_parse_and_make_their_own_corpus(tmp_path):
    assert parse("longrange-copy") == Copy()
    assert parse("longrange-copy:gap=200") == Copy(mean_gap=200.0)
    assert parse("longrange-copy:gap=12.5,width=3,size=5000,seed=2") == Copy(mean_gap=12.5, width=3, size=5000, seed=2)
    assert parse("longrange-brackets:depth=4,run=1") == Brackets(max_depth=4, run=1)
    for bad, says in (("longrange-copy:depth=4", "'depth=4' is not a setting of longrange-copy"), ("longrange-copy:gap", "'gap'"),
                      ("longrange-brackets:depth=x", "depth=N,run=N,size=N,seed=N"), ("longrange-copy:gap=0", "gap must be"),
                      ("longrange-brackets:depth=0", "depth must be 1 to 64"), ("longrange-copy:size=10", "size must be")):  # fmt: skip
        with pytest.raises(CorpusError, match=says):
            parse(bad)
    files, sep = resolve_files(DataConfig(paths=("longrange-copy:gap=5,size=2000",)), tmp_path)
    assert sep == "line" and files[0].read_text() == Copy(mean_gap=5.0, size=2000).text()
    assert files[0] != write("copy", tmp_path / "corpora")  # another setting, another file
    lines = files[0].read_text().splitlines()
    assert sum(len(x) - 5 for x in lines) / len(lines) == pytest.approx(5.0, rel=0.2)  # the mean gap asked for
    with pytest.raises(CorpusError, match="gap must be"):
        resolve_files(DataConfig(paths=("longrange-copy:gap=-1",)), tmp_path)


def _copy_brute(c: Copy, ks: tuple[int, ...]) -> tuple[float, dict[int, float], float]:
    """Every line by its gap (every word alike): expected bits, chars and extra bits at memory k."""
    p, A, w = c.p_end, len(c.symbols), c.width
    bits = chars = mean = 0.0
    extra = dict.fromkeys(ks, 0.0)
    for gap in range(2000):
        P = p * (1 - p) ** gap  # the whole line: A^-w for the word, then the gap
        if P < 1e-300:
            break
        bits += P * (w * math.log2(A) - math.log2(P))
        chars += P * (2 * w + gap + 2)
        mean += P * (w + gap + 1)
        for k in ks:
            extra[k] += P * (w * math.log2(A) if w + gap + 1 > k else 0.0)
    return bits / chars, {k: (bits + e) / chars for k, e in extra.items()}, mean


def _brackets_brute(b: Brackets, ks: tuple[int, ...], cut: float = 1e-11) -> tuple[float, dict[int, float], float]:
    """Every line the generator writes with probability above `cut`, walked event by event."""
    K = b.kinds
    bits = chars = far_mass = closers = dist_sum = 0.0
    extra = dict.fromkeys(ks, 0.0)
    todo = [(1.0 / K, 1, [0], True, [])]  # (P so far, characters so far, opener positions, last opened, closer distances)
    while todo:
        P, n, stack, opened, dists = todo.pop()
        if not stack:  # the line is done: n characters and the newline
            bits += -P * math.log2(P)
            chars += P * (n + 1)
            closers += P * len(dists)
            dist_sum += P * sum(dists)
            for k in ks:
                extra[k] += P * math.log2(K) * sum(d > k for d in dists)
            continue
        if P < cut:
            far_mass += P
            continue
        n += b.run  # the filler letters, known from the depth
        q = 0.0 if len(stack) >= b.max_depth else (b.p_continue if opened else b.p_reopen)
        if q > 0:
            for _ in range(K):  # each kind of opener alike
                todo.append((P * q / K, n + 1, stack + [n], True, dists))
        if q < 1:
            todo.append((P * (1 - q), n + 1, stack[:-1], False, dists + [n - stack[-1]]))
    assert far_mass < 1e-5
    return bits / chars, {k: (bits + e) / chars for k, e in extra.items()}, dist_sum / closers


@pytest.mark.parametrize("c", [Copy(symbols="ab", width=2, mean_gap=1.5), Copy(symbols="abc", width=1, mean_gap=4.0)])
def test_copy_figures_equal_brute_force(c):
    ks = (0, 2, 3, 4, 6, 9)
    rate, bounds, mean = _copy_brute(c, ks)
    assert c.entropy_rate() == pytest.approx(rate, rel=1e-9)
    for k in ks:
        assert c.memory_bound(k) == pytest.approx(bounds[k], rel=1e-9), k
    assert c.distances()[0] == pytest.approx(mean, rel=1e-9)


@pytest.mark.parametrize("b", [Brackets(pairs="()[]", max_depth=2, run=1, p_continue=0.5, p_reopen=0.1),
                               Brackets(pairs="()[]", max_depth=3, run=2, p_continue=0.3, p_reopen=0.05)])  # fmt: skip
def test_brackets_figures_equal_brute_force(b):
    ks = (0, 2, 3, 4, 6, 9, 12)
    rate, bounds, mean = _brackets_brute(b, ks)  # lines below 1e-11 left out: agreement to about 1e-6
    assert b.entropy_rate() == pytest.approx(rate, rel=1e-5)
    for k in ks:
        assert b.memory_bound(k) == pytest.approx(bounds[k], rel=1e-5), k
    assert b.distances()[0] == pytest.approx(mean, rel=1e-5)


def test_the_quantile_of_the_distances():
    c = Copy(mean_gap=48.0)
    mean, q90 = c.distances()
    assert mean == 51.0 and c.far(q90) <= 0.1 < c.far(q90 - 1)
    b = Brackets()
    _, q90 = b.distances()
    assert b.far(q90) <= 0.1 < b.far(q90 - 1)


def test_the_window_that_spans_the_dependencies():
    assert window.dependency(["longrange-copy"]) == window.Dependency("longrange-copy", 51.0, 114, 128)
    assert window.dependency(["longrange-copy:gap=200"]).window == 512
    assert window.dependency(["pydoc-topics"]) is None and window.dependency(["longrange-copy", "longrange-brackets"]) is None
    assert window.note(["longrange-copy"], 64) is None  # past the mean: no note
    t, line = window.fit(["longrange-copy"], TrainConfig(), set())
    assert t.seq_len == 128 and line.startswith("--seq-len 128 (not 32)")
    t, line = window.fit(["longrange-copy"], TrainConfig(seq_len=16), {"seq_len"})
    assert t.seq_len == 16 and line == window.note(["longrange-copy"], 16)


NOTE = ("--seq-len 16 is shorter than longrange-copy:gap=30,size=8000's dependencies (33 characters on average, 9 in 10 "
        "within 73), so no gradient spans them; train with --seq-len 128 to carry them.")  # fmt: skip


def test_train_says_when_the_window_is_too_short(runner, workdir):
    from charrnn.cli import app
    from helpers import TINY, no_traceback

    args = ["train", "longrange-copy:gap=30,size=8000", *TINY, "--steps", "2", "--device", "cpu", "--quiet"]
    r = runner.invoke(app, [*args, "--name", "short"])
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert NOTE in r.stderr.splitlines()
    r = runner.invoke(app, [*args, "--name", "long", "--seq-len", "64"])
    assert r.exit_code == 0 and "--seq-len" not in r.output
    # the gradient view on a copy line: from the copied letter back to its source, 33 characters before
    line = "kc" + "." * 30 + ":k"
    r = runner.invoke(app, ["inspect", "long", "--text", line, "--gradients"])
    assert r.exit_code == 0, r.output
    assert "÷1000" in r.stdout and "32" in r.stdout.split("gradient through time")[1]  # the row of the source is shown


def test_compare_picks_a_window_that_spans_them(runner, workdir):
    from charrnn.cli import app

    base = ["compare", "longrange-copy:gap=30,size=8000", "--cells", "rnn", "--hidden", "8", "--steps", "1", "--batch-size", "2", "--device", "cpu"]
    r = runner.invoke(app, [*base, "--name", "picked"])
    assert r.exit_code == 0, r.output
    assert ("--seq-len 128 (not 32) so that the gradient spans longrange-copy:gap=30,size=8000's dependencies (33 characters "
            "on average, 9 in 10 within 73); give --seq-len to choose.") in r.stdout.replace("\n", " ")  # fmt: skip
    assert "no memory (exact)" in r.stdout and "memory 4 (exact)" in r.stdout and "memory 128 (exact)" in r.stdout
    # the gradient through time at the corpus's scale: from the copied letters, 32 steps back
    assert "rnn: from a character that needs memory, the gradient |dL/dh| 32 steps back (the mean dependency) is " in r.stdout.replace("\n", " ")
    r = runner.invoke(app, [*base, "--name", "given", "--seq-len", "16"])
    assert r.exit_code == 0, r.output
    assert NOTE in r.stdout.replace("\n", " ")
