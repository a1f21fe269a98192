"""The n-gram reference models: exact against a plain-Python Kneser-Ney, proper
distributions, documents, units, TokenFile input and sampling."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from charrnn.baselines.ngram import NGramModel, reference
from charrnn.data.tokenfile import TokenFile
from charrnn.data.tokenizer import EOS_CHAR, CharTokenizer

from helpers import make_text


def kn_reference(train: list[int], V: int, order: int, eos: int | None, history: list[int], w: int) -> float:
    """Interpolated Kneser-Ney written the slow, obvious way (dicts of tuples), for parity."""
    PAD = V

    def context(seq: list[int], t: int, n: int) -> tuple[int, ...]:
        start = max([i for i in range(t) if seq[i] == eos], default=0) if eos is not None else 0
        return tuple(seq[t - j] if t - j >= start else PAD for j in range(n, 0, -1))

    raw = [Counter((context(train, t, k - 1), train[t]) for t in range(len(train))) for k in range(1, order + 1)]
    cont = []
    for k in range(1, order + 1):  # N1+(. h w): distinct left extensions among the (k+1)-grams
        left = defaultdict(set)
        if k < order:
            for (h, x) in raw[k]:
                left[(h[1:], x)].add(h[0])
        cont.append(Counter({g: len(s) for g, s in left.items()}))

    def discount(counts: Counter) -> float:
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        return 0.5 if n1 + 2 * n2 == 0 else min(max(n1 / (n1 + 2 * n2), 0.1), 1.0)

    def p(k: int, h: tuple[int, ...], top: bool) -> float:
        if k == 0:
            return 1.0 / V
        table = raw[k - 1] if top else cont[k - 1]
        row = {x: c for (g, x), c in table.items() if g == h}
        total = sum(row.values())
        lower = p(k - 1, h[1:], False)
        if total == 0:
            return lower
        d = discount(table)
        return (max(row.get(w, 0) - d, 0) + d * len(row) * lower) / total

    seq = history + [w]
    return p(order, context(seq, len(history), order - 1), True)


def random_docs(seed: int, n: int = 300, V: int = 5, eos: int = 4) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(V - 1, size=n, p=[0.5, 0.25, 0.15, 0.1]).tolist()
    for at in rng.choice(np.arange(3, n), size=n // 25, replace=False):
        ids[at] = eos
    return ids


@pytest.mark.parametrize("eos", [4, None])
def test_matches_plain_python_kneser_ney(eos):
    train, test = random_docs(0), random_docs(1, n=60)
    model = NGramModel.fit(np.array(train), 5, max_order=4, eos_id=eos)
    for order in range(1, 5):
        lp = model.logprobs(np.array(test), order)
        for t in range(1, len(test), 7):
            want = kn_reference(train, 5, order, eos, test[:t], test[t])
            assert math.isclose(math.exp(lp[t - 1]), want, rel_tol=1e-12), (order, t)


def test_distribution_sums_to_one_and_agrees_with_scoring():
    train, test = random_docs(2), random_docs(3, n=80)
    model = NGramModel.fit(train, 5, max_order=5, eos_id=4)
    test = test + [3, 3, 3, 3, 3, 3]  # a context never seen in training at high orders
    for order in range(1, 6):
        lp = model.logprobs(test, order)
        for t in range(1, len(test)):
            dist = model.distribution(test[:t], order)
            assert dist.shape == (5,) and (dist > 0).all()
            assert abs(dist.sum() - 1.0) < 1e-12
            assert math.isclose(dist[test[t]], math.exp(lp[t - 1]), rel_tol=1e-12)
    assert abs(model.distribution([], 5).sum() - 1.0) < 1e-12


def test_unigram_is_the_empirical_frequencies():
    # every token seen: the discount each loses comes back through the uniform, exactly
    rng = np.random.default_rng(0)
    ids = rng.choice(4, size=2_000, p=[0.4, 0.3, 0.2, 0.1])
    freq = np.bincount(ids, minlength=4) / len(ids)
    assert np.allclose(NGramModel.fit(ids, 4, max_order=1).distribution([], 1), freq, rtol=0, atol=1e-15)
    # an unseen token: "aab" has c(a)=2, c(b)=1, c(c)=0; n1 = n2 = 1, so D = 1/3, and
    # the discounted mass D * 2 types / 3 is shared uniformly: p = 17/27, 8/27, 2/27
    model = NGramModel.fit([0, 0, 1], 3, max_order=1)
    assert np.allclose(model.distribution([], 1), [17 / 27, 8 / 27, 2 / 27], rtol=0, atol=1e-15)


def test_higher_orders_fit_training_data_better():
    text = make_text(300)
    tok = CharTokenizer(text)
    ids = np.array(tok.encode(text))
    model = NGramModel.fit(ids, tok.vocab_size, max_order=5)
    bits = [s.bits_per_char for s in model.scores(ids, tok.char_lengths())]
    assert all(a > b for a, b in zip(bits, bits[1:])), bits
    assert bits[0] > 3.0 and bits[-1] < 1.5


def test_end_of_document_resets_the_context():
    # every document starts with "x"; "x" never follows anything else
    docs = ["xab", "xba", "xaab", "xbb"] * 20
    text = EOS_CHAR.join(docs) + EOS_CHAR
    tok = CharTokenizer(text, eos=True)
    ids = tok.encode_codepoints(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64))
    eos, x, a, b = tok.eos_id, tok.stoi["x"], tok.stoi["a"], tok.stoi["b"]
    model = NGramModel.fit(ids, tok.vocab_size, max_order=4, eos_id=eos)
    after_ab = model.distribution([x, a, b, eos], 4)
    after_ba = model.distribution([x, b, a, eos], 4)
    assert np.array_equal(after_ab, after_ba)  # what came before the end of document is gone
    assert after_ab[x] > 0.9
    # a document scores the same whatever precedes it
    one = model.logprobs([x, a, a, eos, x, b, a, eos], 4)
    two = model.logprobs([x, b, b, eos, x, b, a, eos], 4)
    assert np.array_equal(one[3:], two[3:])
    # without resets the previous document leaks in
    carry = NGramModel.fit(ids, tok.vocab_size, max_order=4, eos_id=None)
    assert not np.array_equal(carry.distribution([x, a, b, eos], 4), carry.distribution([x, b, a, eos], 4))


def test_units_follow_evaluate(tmp_path):
    # bits/char = total nats / characters / ln 2, with characters from char_lengths over ids[1:]
    train, val = random_docs(4), random_docs(5, n=50)
    lengths = np.array([1.0, 2.0, 3.0, 1.0, 1.0])
    model = NGramModel.fit(train, 5, max_order=3, eos_id=4)
    s = model.score(val, lengths, 3)
    nats = -model.logprobs(val, 3).sum()
    chars = lengths[np.array(val[1:])].sum()
    assert s.tokens == len(val) - 1 and s.chars == chars
    assert math.isclose(s.nats_per_token, nats / (len(val) - 1), rel_tol=1e-12)
    assert math.isclose(s.bits_per_char, nats / chars / math.log(2), rel_tol=1e-12)
    assert [x.bits_per_char for x in model.scores(val, lengths)][2] == pytest.approx(s.bits_per_char, rel=1e-12)


def test_token_file_input_and_reference(tmp_path):
    text = make_text(200)
    tok = CharTokenizer(text)
    ids = np.array(tok.encode(text), dtype=np.uint8)
    (tmp_path / "ids.bin").write_bytes(ids.tobytes())
    tf = TokenFile(tmp_path / "ids.bin", np.uint8, len(ids))
    split = len(ids) * 9 // 10
    _, from_file = reference(tf[:split], tf[split:], tok)
    _, from_array = reference(ids[:split], ids[split:], tok)
    assert from_file == from_array and [s.order for s in from_file] == [1, 2, 3, 4, 5]
    assert from_file[2].bits_per_char < from_file[0].bits_per_char


def test_sampling_is_deterministic_and_stops_at_end_of_document():
    docs = ["abcabc", "cabca", "bca"] * 30
    text = EOS_CHAR.join(docs) + EOS_CHAR
    tok = CharTokenizer(text, eos=True)
    ids = [tok.stoi[c] if c != EOS_CHAR else tok.eos_id for c in text]
    model = NGramModel.fit(ids, tok.vocab_size, max_order=3, eos_id=tok.eos_id)
    one, again = model.sample(40, 3, seed=1), model.sample(40, 3, seed=1)
    assert one == again and tok.eos_id not in one
    assert any(model.sample(40, 3, seed=s) != one for s in range(2, 6))
    long = model.sample(200, 3, seed=1, stop_at_eos=False)
    assert len(long) == 200 and tok.eos_id in long
    primed = model.sample(5, 3, seed=0, prime=tok.encode("ab"))
    assert tok.decode(primed)[0] == "c"  # "ab" is always followed by "c"


def test_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        NGramModel.fit([0, 1], 2, max_order=2).logprobs([0, 1], 3)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        NGramModel.fit([0, 2], 2)
