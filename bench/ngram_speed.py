"""n-gram reference models: time to fit and score orders 1-5, and their bits/char.

Fits interpolated Kneser-Ney models of every order up to 5 on the training split
of a corpus (tinyshakespeare by default, split as `charrnn train` splits it) and
scores each order on the validation split. Baselines measured in the same run:
the same fit with every count taken by sorting (np.unique) instead of counting
(bincount), and plain Python counting the n-grams of every order with
collections.Counter (only counting: the least a dict-based model has to do).

    python bench/ngram_speed.py [CORPUS] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, median  # noqa: E402

from charrnn.baselines import ngram  # noqa: E402
from charrnn.config import DataConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402


def fit_and_score(train: np.ndarray, val: np.ndarray, tok) -> tuple[float, float, list[ngram.NGramScore]]:
    t0 = time.perf_counter()
    model = ngram.NGramModel.fit(train, tok.vocab_size, 5, tok.eos_id)
    t1 = time.perf_counter()
    scores = model.scores(val, tok.char_lengths())
    return t1 - t0, time.perf_counter() - t1, scores


def python_counting(train: np.ndarray) -> float:
    ids = train.tolist()
    t0 = time.perf_counter()
    for k in range(1, 6):
        Counter(zip(*(ids[i:] for i in range(k))))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", nargs="?", default=str(SHAKESPEARE))
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    header("n-gram reference models: fit + score, orders 1-5")
    with tempfile.TemporaryDirectory() as d:
        c = prepare(DataConfig(paths=(args.corpus,)), Path(d))
        tok = c.tokenizer
        train, val = np.asarray(c.train), np.asarray(c.val)
    print(c.summary())
    fits, scores_t, sorted_fits = [], [], []
    for _ in range(args.repeats):
        f, s, scores = fit_and_score(train, val, tok)
        fits.append(f)
        scores_t.append(s)
    saved = ngram.COUNTING_MAX
    ngram.COUNTING_MAX = 0  # every count by np.unique's sort
    try:
        for _ in range(args.repeats):
            f, _, sorted_scores = fit_and_score(train, val, tok)
            sorted_fits.append(f)
    finally:
        ngram.COUNTING_MAX = saved
    assert sorted_scores == scores, "the two counting paths must agree exactly"
    py = python_counting(train)
    fit, score, srt = median(fits), median(scores_t), median(sorted_fits)
    print(f"medians of {args.repeats} runs; {len(train):,} training ids, {len(val):,} validation ids")
    print(f"fit all orders (counting):        {fit:7.3f} s  1.00x")
    print(f"fit all orders (sorting):         {srt:7.3f} s  {srt / fit:.2f}x")
    print(f"plain Python Counter, counts only: {py:6.3f} s  {py / fit:.2f}x  (one run)")
    print(f"score all orders on validation:   {score:7.3f} s")
    print(f"fit + score:                      {fit + score:7.3f} s")
    print("order  nats/token  bits/char")
    for s in scores:
        print(f"{s.order:5d}  {s.nats_per_token:10.4f}  {s.bits_per_char:9.4f}")


if __name__ == "__main__":
    main()
