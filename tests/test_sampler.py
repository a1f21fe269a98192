"""The sampler (tasks/sampler.py): Gumbel-max draws from torch's exponential stream,
drawn in blocks, from logits or from the output layer's input, with top-k and top-p."""

import numpy as np
import pytest
import torch

from charrnn.tasks.sampler import Sampler, allowed, distribution

CASES = [(1.0, None, None), (0.8, None, None), (0.5, 3, None), (1.3, None, 0.6), (0.8, 4, 0.7), (0.0, None, None)]


def test_the_exponential_stream_is_the_same_drawn_in_blocks():
    """What drawing ahead relies on: torch's CPU generator gives the same numbers for
    draws of sizes a, b, c as for one draw of a + b + c, and ends in the same state."""
    for V, sizes in [(65, [1, 2, 4, 8, 16, 33]), (8000, [1, 3, 2]), (7, [5, 1, 64, 2])]:
        g = torch.Generator().manual_seed(5)
        parts = [torch.empty(n, V).exponential_(1, generator=g) for n in sizes]
        after = torch.rand(3, generator=g)
        g = torch.Generator().manual_seed(5)
        whole = torch.empty(sum(sizes), V).exponential_(1, generator=g)
        assert torch.equal(torch.cat(parts), whole) and torch.equal(torch.rand(3, generator=g), after)


def test_gumbel_max_draws_what_multinomial_drew():
    """argmax(o/T + g), g = -log e, against the draw it replaced, argmax(softmax(o/T) / e)
    with the same e: the same token but where two tie to within rounding."""
    gen_logits = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 65, generator=gen_logits) * torch.rand(20000, 1, generator=gen_logits) * 6
    for T in (1.0, 0.8):
        old = torch.Generator().manual_seed(1)
        want = [int((torch.softmax(row / T, -1) / torch.empty(65).exponential_(1, generator=old)).argmax()) for row in logits]
        s = Sampler(T, None, None, torch.Generator().manual_seed(1))
        got = [s.one(row) for row in logits]
        assert sum(a != b for a, b in zip(want, got)) <= 2  # of 20,000


def test_drawing_from_the_output_layer_draws_what_its_logits_give():
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 50)
    with torch.no_grad():
        head.weight.mul_(4)
    tops = torch.randn(3000, 1, 32)
    for T, k, p in CASES:
        a, b = Sampler(T, k, p, torch.Generator().manual_seed(3)), Sampler(T, k, p, torch.Generator().manual_seed(3), head)
        with torch.no_grad():
            via_logits = [a.one(head(t)) for t in tops]
        via_head = [int(b.ids_top(t)) for t in tops]
        assert sum(x != y for x, y in zip(via_logits, via_head)) <= 3, (T, k, p)  # rounding: W/T against (Wh + b)/T
        c, d = Sampler(T, k, p, torch.Generator().manual_seed(4)), Sampler(T, k, p, torch.Generator().manual_seed(4), head)
        rows = torch.randn(7, 32)
        with torch.no_grad():
            assert c.rows(head(rows)).tolist() == d.rows_top(rows).tolist()


@pytest.mark.parametrize("T,k,p", CASES)
def test_draws_follow_the_distribution_and_never_leave_the_allowed_set(T, k, p):
    logits = torch.tensor([2.0, 1.5, 1.4, 0.0, -1.0, 1.5])  # a tie at 1.5
    want = distribution(logits, T, k, p).numpy()
    s = Sampler(T, k, p, torch.Generator().manual_seed(0))
    counts = np.bincount([s.one(logits) for _ in range(20000)], minlength=6) / 20000
    assert np.all(counts[want == 0] == 0)
    assert np.abs(counts - want).max() < 0.015, (counts, want)
    batch = s.rows(logits.expand(4000, 6))
    assert np.all(want[batch] > 0) and np.abs(np.bincount(batch, minlength=6) / 4000 - want).max() < 0.03


def test_the_quick_membership_test_agrees_with_the_allowed_set():
    rng = np.random.default_rng(0)
    for _ in range(300):
        V = int(rng.integers(2, 40))
        y = (rng.normal(size=V) * rng.uniform(0.1, 5)).astype(np.float32)
        y[rng.integers(0, V, 3)] = y[0]  # ties
        k = None if rng.random() < 0.3 else int(rng.integers(1, V + 1))
        p = None if rng.random() < 0.3 else float(rng.uniform(0.05, 1.0))
        keep = allowed(y, k, p)
        keep = np.ones(V, bool) if keep is None else keep
        s = Sampler(1.0, k, p, torch.Generator())
        for i in range(V):
            assert keep[i] == s._allowed_one(y, i), (y, k, p, i)
        assert keep[y.argmax()]  # the most likely token is always allowed


def test_a_short_sample_draws_little():
    """Blocks double from one token: 10 tokens draw 1 + 2 + 4 + 8 rows of noise, not a million numbers."""
    g = torch.Generator().manual_seed(0)
    s = Sampler(1.0, None, None, g)
    for _ in range(10):
        s.one(torch.zeros(65))
    assert len(s.raw) - s.at == 15 - 10


@pytest.mark.parametrize("T,k,p", [c for c in CASES if c[1] is not None or c[2] is not None] + [(0.8, 40, 0.95)])
def test_the_quick_head_test_draws_the_tokens_the_numpy_test_drew(T, k, p, monkeypatch):
    """ids_top's all-torch test of a truncated draw (the usual case: the most likely token)
    gives every token the numpy test gave, from the same seed, rejected draws included."""
    from charrnn.tasks import sampler

    torch.manual_seed(0)
    head = torch.nn.Linear(32, 65)
    with torch.no_grad():
        head.weight.mul_(3)
    tops = torch.randn(3000, 1, 32)
    quick = Sampler(T, k, p, torch.Generator().manual_seed(7), head)
    numpy_test = Sampler(T, k, p, torch.Generator().manual_seed(7), head)
    numpy_test.quick = False
    rejected = []  # the draws whose unrestricted argmax was not allowed: the whole allowed set worked out
    monkeypatch.setattr(sampler, "allowed", lambda *a: rejected.append(1) or allowed(*a))
    got = [int(quick.ids_top(t)) for t in tops]
    assert quick.quick and len(rejected) > 10
    want = [int(numpy_test.ids_top(t)) for t in tops]
    assert got == want
    most_likely = [int(head(t).argmax()) for t in tops]
    assert sum(g != m for g, m in zip(got, most_likely)) > 100  # draws the numpy test decided
