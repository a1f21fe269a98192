"""Character n-gram naive Bayes: exact on a hand-worked case, metrics, and a real win
over chance on two generated styles."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from charrnn.baselines.bayes import NaiveBayes


def test_hand_worked_unigram_case():
    # x: "aa", y: "b"; F = 2, alpha = 1: P(a|x) = 3/4, P(b|x) = 1/4, P(a|y) = 1/3, P(b|y) = 2/3,
    # equal priors; "ab": x 3/32, y 1/9, so P(x | "ab") = 27/59
    nb = NaiveBayes(orders=(1,), alpha=1.0).fit([("x", "aa"), ("y", "b")])
    assert nb.labels == ("x", "y")
    p = nb.predict_proba(["ab", "", "zzz"])
    assert math.isclose(p[0, 0], 27 / 59, rel_tol=1e-12) and math.isclose(p[0, 1], 32 / 59, rel_tol=1e-12)
    assert np.allclose(p[1], [0.5, 0.5]) and np.allclose(p[2], [0.5, 0.5])  # no known feature: the prior
    assert np.allclose(p.sum(1), 1.0)


def test_bigrams_and_boundaries_count():
    # the same letters, in a different order and at a different end
    nb = NaiveBayes(orders=(2,)).fit([("ab", "ab ab ab"), ("ba", "ba ba ba")])
    assert nb.predict(["abab", "baba", "ab"]) == ["ab", "ba", "ab"]
    only_start = NaiveBayes(orders=(2,)).fit([("s", "xq"), ("e", "qx")])
    assert only_start.predict(["xz", "zx"]) == ["s", "e"]  # only "^x" or "x$" is known


def test_evaluation_metrics_by_hand():
    nb = NaiveBayes(orders=(1,)).fit([("a", "aaaa"), ("b", "bbbb"), ("b", "bbb")])
    ev = nb.evaluate([("a", "aaa"), ("a", "bbb"), ("b", "bb"), ("c", "aa")])
    assert ev.labels == ("a", "b", "c") and ev.n == 4
    assert ev.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert ev.accuracy == 0.5 and ev.majority == 0.25  # "b" is the commonest training label
    assert ev.precision == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert ev.recall == {"a": 0.5, "b": 1.0, "c": 0.0}


def styles(n: int, seed: int) -> list[tuple[str, str]]:
    """Two styles over one alphabet: prose-like words, and code-like identifiers."""
    rng = random.Random(seed)
    prose = "the cat sat on a mat and then it ran to the old red barn where we all met".split()
    code = "def run return self init for in if else value index item key list".split()
    docs = []
    for i in range(n):
        if i % 2:
            docs.append(("prose", " ".join(rng.choice(prose) for _ in range(rng.randint(3, 7))) + "."))
        else:
            words = [rng.choice(code) for _ in range(rng.randint(2, 4))]
            docs.append(("code", "_".join(words) + "(" + rng.choice(code) + ")"))
    return docs


@pytest.mark.parametrize("orders", [(1,), (1, 2, 3)])
def test_beats_chance_on_two_generated_styles(orders):
    nb = NaiveBayes(orders=orders).fit(styles(200, 0))
    ev = nb.evaluate(styles(200, 1))
    assert ev.majority == 0.5 and ev.accuracy > 0.95, ev
    assert min(ev.recall.values()) > 0.9
    p = nb.predict_proba([t for _, t in styles(10, 2)])
    assert p.shape == (10, 2) and np.allclose(p.sum(1), 1.0)


def test_unknown_characters_and_bad_arguments():
    nb = NaiveBayes().fit([("a", "abc"), ("b", "xyz")])
    assert nb.predict(["ab\u00e9\u4e2d"]) == ["a"]  # characters never seen are no feature
    with pytest.raises(ValueError, match="orders"):
        NaiveBayes(orders=(0,))
    with pytest.raises(ValueError, match="alpha"):
        NaiveBayes(alpha=0)
    with pytest.raises(ValueError, match="fit"):
        NaiveBayes().predict(["x"])
    with pytest.raises(ValueError, match="at least one"):
        NaiveBayes().fit([])
