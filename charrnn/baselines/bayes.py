"""Character n-gram multinomial naive Bayes: the count-based classifier beside the RNN.

A text x is a bag of its character n-grams f (every n in `orders`, the text framed
by a boundary mark so that how it starts and ends counts too), and

    log P(c | x) = log P(c) + sum_f n_f(x) log P(f | c) - log Z(x)
    P(f | c)     = (N_cf + alpha) / (N_c + alpha F)

with P(c) the share of training documents labelled c, N_cf how often n-gram f
occurs in them, N_c = sum_f N_cf and F the number of distinct n-grams seen in
training (add-alpha smoothing). N-grams never seen in training are left out, as
in every multinomial naive Bayes: they are not features of the model. Sums stay
in log space; Z(x) is a log-sum-exp over the classes.

Vectorised numpy: characters are ranked in the training alphabet (0 = the
boundary, then the alphabet, then one id for any character never seen), and an
n-gram is the int64 key sum_i s_i B^(n-1-i) plus an offset per order, so orders
never share a key. Pure numpy, no torch: it serves as the baseline of
`--task classify` and to classify generated samples back to their label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

DEFAULT_ORDERS = (1, 2, 3)


@dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]  # the trained labels, then any only seen here (never predicted)
    confusion: np.ndarray  # (C, C) int: row = true label, column = predicted label
    accuracy: float
    precision: dict[str, float]  # 0.0 for a label never predicted
    recall: dict[str, float]  # 0.0 for a label with no documents here
    majority: float  # accuracy of always answering the most common training label
    n: int


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


class NaiveBayes:
    def __init__(self, orders: Sequence[int] = DEFAULT_ORDERS, alpha: float = 1.0):
        orders = tuple(sorted(set(int(n) for n in orders)))
        if not orders or orders[0] < 1:
            raise ValueError(f"orders must be positive n-gram lengths, got {orders}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.orders = orders
        self.alpha = float(alpha)
        self.labels: tuple[str, ...] = ()

    # ------------------------------------------------------------ features

    def _features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document index, n-gram key) for every n-gram occurrence in the texts."""
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        cps = _codepoints("".join(texts))
        at = np.minimum(np.searchsorted(self._alphabet, cps), len(self._alphabet) - 1)
        sym_chars = np.where(self._alphabet[at] == cps, at + 1, len(self._alphabet) + 1)
        doc_of_char = np.repeat(np.arange(len(texts)), lengths)
        sym = np.zeros(len(cps) + 2 * len(texts), dtype=np.int64)  # 0: the boundary around each text
        sym[np.arange(len(cps)) + 2 * doc_of_char + 1] = sym_chars
        doc = np.repeat(np.arange(len(texts)), lengths + 2)
        B = self._base
        docs, keys, offset = [], [], 0
        for n in self.orders:
            m = len(sym) - n + 1
            if m > 0:
                key = np.zeros(m, dtype=np.int64)
                for i in range(n):
                    key = key * B + sym[i : i + m]
                keep = doc[:m] == doc[n - 1 :]  # inside one text
                if n == 1:
                    keep &= sym[:m] != 0  # the boundary alone says nothing
                docs.append(doc[:m][keep])
                keys.append(key[keep] + offset)
            offset += B**n
        if not docs:  # texts too short for every order asked
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(docs), np.concatenate(keys)

    # ------------------------------------------------------------ fit / predict

    def fit(self, docs: Iterable[tuple[str, str]]) -> "NaiveBayes":
        """Learn from (label, text) pairs."""
        pairs = list(docs)
        if not pairs:
            raise ValueError("naive Bayes needs at least one labelled document")
        labels = [str(lab) for lab, _ in pairs]
        texts = [t for _, t in pairs]
        self.labels = tuple(sorted(set(labels)))
        y = np.searchsorted(np.array(self.labels), np.array(labels))
        self._alphabet = np.unique(_codepoints("".join(texts)))
        if len(self._alphabet) == 0:
            self._alphabet = np.zeros(1, dtype=np.int64)  # texts all empty: only boundaries count
        self._base = len(self._alphabet) + 2
        if sum(self._base**n for n in self.orders) >= 2**62:
            raise ValueError(f"{len(self._alphabet)} characters are too many for n-grams up to {self.orders[-1]}")
        doc, key = self._features(texts)
        self._vocab, fid = np.unique(key, return_inverse=True)
        C, F = len(self.labels), len(self._vocab)
        counts = np.bincount(y[doc] * F + fid.ravel(), minlength=C * F).reshape(C, F).astype(np.float64)  # N_cf
        self.log_prior = np.log(np.bincount(y, minlength=C) / len(y))  # (C,)
        self.log_lik = np.log(counts + self.alpha) - np.log(counts.sum(1, keepdims=True) + self.alpha * F)  # (C, F)
        self._majority = self.labels[int(np.argmax(np.bincount(y, minlength=C)))]
        return self

    def log_proba(self, texts: Sequence[str]) -> np.ndarray:
        """log P(c | text), (N, C), classes in the order of `labels`."""
        if not self.labels:
            raise ValueError("fit the classifier first")
        texts = list(texts)
        scores = np.tile(self.log_prior, (len(texts), 1))  # (N, C)
        if texts:
            doc, key = self._features(texts)
            at = np.minimum(np.searchsorted(self._vocab, key), len(self._vocab) - 1)
            known = self._vocab[at] == key
            doc, fid = doc[known], at[known]
            for c in range(len(self.labels)):
                scores[:, c] += np.bincount(doc, weights=self.log_lik[c, fid], minlength=len(texts))
        top = scores.max(1, keepdims=True)
        return scores - (top + np.log(np.exp(scores - top).sum(1, keepdims=True)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.exp(self.log_proba(texts))

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.log_proba(texts), axis=1)]

    def evaluate(self, docs: Iterable[tuple[str, str]]) -> Evaluation:
        """Accuracy, per-label precision and recall and the confusion matrix on (label, text) pairs."""
        pairs = list(docs)
        truth = [str(lab) for lab, _ in pairs]
        labels = self.labels + tuple(sorted(set(truth) - set(self.labels)))
        index = {lab: i for i, lab in enumerate(labels)}
        pred = self.predict([t for _, t in pairs])
        confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(confusion, ([index[t] for t in truth], [index[p] for p in pred]), 1)
        hits = np.diag(confusion).astype(np.float64)
        predicted, actual = confusion.sum(0), confusion.sum(1)
        n = len(pairs)
        return Evaluation(
            labels=labels,
            confusion=confusion,
            accuracy=float(hits.sum() / n) if n else math.nan,
            precision={lab: float(hits[i] / predicted[i]) if predicted[i] else 0.0 for i, lab in enumerate(labels)},
            recall={lab: float(hits[i] / actual[i]) if actual[i] else 0.0 for i, lab in enumerate(labels)},
            majority=float(sum(t == self._majority for t in truth) / n) if n else math.nan,
            n=n,
        )
