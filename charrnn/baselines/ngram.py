"""Count-based n-gram language models: what "learning something" means on a corpus.

A model of order n predicts a token from the n-1 tokens before it, with counts
taken from the training ids. Smoothing is interpolated Kneser-Ney (Kneser & Ney
1995, in the form of Chen & Goodman 1998), one discount per order:

    p_k(w | h) = max(a_k(h w) - D_k, 0) / a_k(h .)  +  D_k N1+(h .) / a_k(h .) * p_{k-1}(w | h')
    p_0(w)     = 1 / V

where h' is h without its oldest token, a_k is the raw count c(h w) at the
model's top order and the continuation count N1+(. h w) (how many distinct
tokens precede h w) below it, N1+(h .) is how many distinct tokens follow h,
and D_k = n1 / (n1 + 2 n2) from the counts of counts (Ney, Essen & Kneser 1994).
A context never seen in training backs off whole: p_k = p_{k-1}.

Why Kneser-Ney and not Witten-Bell: both are exact, cheap and give every token a
probability, but Chen & Goodman found interpolated Kneser-Ney the better of the
two on every corpus and order they tried, and the gap grows with the order, as
contexts get sparse (a 5-gram of characters on 1 MB is sparse). The reason is the
continuation counts: a lower order is only consulted for contexts the higher one
has not seen, so it should say how readily w follows a *new* context, not how
often w occurs.

Documents: an end-of-document id (`eos_id`) resets the context, as the RNNs
reset their state when it is their input: the tokens before it are replaced by a
padding id V that no target ever takes (and so is the corpus' start). Pass
`eos_id=None` for one running context (like `--doc-state carry`).

Everything is vectorised numpy. A context of length j is a dense id, built from
the context of length j-1 and the token j steps back as an int64 key
`id * (V + 1) + token`, then ranked with np.unique; an n-gram is `context * V +
target`. Keys stay below (number of contexts) * (V + 1), so they never collide
or overflow. Scoring looks the keys up with searchsorted. Units follow
charrnn/evaluate.py: nats per token over the targets ids[1:], and bits per
character = total nats / characters / ln 2 with the tokenizer's char_lengths().
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

LN2 = math.log(2.0)
MAX_ORDER = 5
COUNTING_MAX = 1 << 26  # the largest key range counted with bincount (512 MB of int64); larger ones are sorted


@dataclass(frozen=True)
class NGramScore:
    order: int
    nats_per_token: float
    bits_per_char: float
    tokens: int  # targets scored: ids[1:]
    chars: float


@dataclass
class _Order:
    """Counts of the k-grams (a context of k-1 tokens, then a target) seen in training."""

    keys: np.ndarray  # sorted k-gram keys: context id * V + target
    raw: np.ndarray  # c(h w)
    cont: np.ndarray  # N1+(. h w); zeros at the top order fitted (nothing above it)
    raw_tot: np.ndarray  # per context id: c(h .)
    cont_tot: np.ndarray  # per context id: sum over w of N1+(. h w)
    types: np.ndarray  # per context id: N1+(h .)
    d_raw: float
    d_cont: float


def _discount(counts: np.ndarray) -> float:
    """Ney's D = n1 / (n1 + 2 n2). Kept in [0.1, 1]: D <= 1 keeps every seen count
    positive (so p sums to 1), and D > 0 leaves mass for unseen tokens even when no
    n-gram was seen once (tiny or very repetitive corpora)."""
    n1 = int(np.count_nonzero(counts == 1))
    n2 = int(np.count_nonzero(counts == 2))
    if n1 + 2 * n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 1.0)


def _history_start(ids: np.ndarray, eos_id: int | None) -> np.ndarray:
    """For each position t, the first position its context may reach: the last end of
    document before t (its id stays in the context, as the RNN's reset input), else 0."""
    n = len(ids)
    if eos_id is None or n == 0:
        return np.zeros(n, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64)
    last = np.maximum.accumulate(np.where(ids == eos_id, pos, 0))
    return np.concatenate([[0], last[:-1]])


def _back(ids: np.ndarray, start: np.ndarray, j: int, pad: int) -> np.ndarray:
    """The token j steps before each position, or `pad` where that is outside its document."""
    out = np.full(len(ids), pad, dtype=np.int64)
    if j < len(ids):
        t = np.arange(j, len(ids))
        inside = t - j >= start[j:]
        out[j:] = np.where(inside, ids[:-j], pad)
    return out


def _distinct(keys: np.ndarray, size: int, inverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Sorted distinct keys in [0, size), their counts, and (if asked) each key's rank.

    A counting pass (bincount, then a running sum for the ranks) when the key range
    is at most a few times the number of keys (and the table at most 512 MB), else
    np.unique's sort. On tinyshakespeare every order takes the counting pass: all
    five orders fit in 0.15 s, 4.0x faster than sorting (bench/ngram_speed.py).
    """
    if size <= min(max(4 * len(keys), 1 << 16), COUNTING_MAX):
        counts = np.bincount(keys, minlength=size)
        distinct = np.flatnonzero(counts)
        rank = np.cumsum(counts > 0) - 1 if inverse else None
        return distinct, counts[distinct], (rank[keys] if rank is not None else None)
    if inverse:
        distinct, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
        return distinct, counts, inv.ravel()
    distinct, counts = np.unique(keys, return_counts=True)
    return distinct, counts, None


def _as_ids(ids: Any, vocab_size: int) -> np.ndarray:
    a = np.asarray(ids).astype(np.int64).ravel()  # a TokenFile reads itself whole here
    if a.size and (a.min() < 0 or a.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); got {a.min()}..{a.max()}")
    return a


class NGramModel:
    """Interpolated Kneser-Ney models of every order up to `max_order`, from one pass of counts."""

    def __init__(self, vocab_size: int, max_order: int, eos_id: int | None, orders: list[_Order], ctx_keys: list[np.ndarray]):
        self.vocab_size = vocab_size
        self.max_order = max_order
        self.eos_id = eos_id
        self._orders = orders  # [k - 1] -> counts of k-grams
        self._ctx_keys = ctx_keys  # [j] -> sorted keys of the length-j contexts (dense id = index)

    @classmethod
    def fit(cls, ids: Any, vocab_size: int, max_order: int = MAX_ORDER, eos_id: int | None = None) -> "NGramModel":
        if not 1 <= max_order:
            raise ValueError(f"max_order must be >= 1, got {max_order}")
        V = int(vocab_size)
        ids = _as_ids(ids, V)
        if len(ids) == 0:
            raise ValueError("an n-gram model needs at least one training id")
        start = _history_start(ids, eos_id)
        ctx = np.zeros(len(ids), dtype=np.int64)  # dense id of each position's context; length 0 first
        n_ctx = 1
        orders: list[_Order] = []
        ctx_keys: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]  # the empty context
        for k in range(1, max_order + 1):
            keys, raw, _ = _distinct(ctx * V + ids, n_ctx * V, inverse=False)
            if k > 1:  # each distinct k-gram adds one left extension to its (k-1)-gram suffix
                below = orders[-1]
                parent = ctx_keys[-1][keys // V] // (V + 1)  # the context without its oldest token
                below.cont = np.bincount(np.searchsorted(below.keys, parent * V + keys % V), minlength=len(below.keys))
                below.cont_tot = np.bincount(below.keys // V, weights=below.cont, minlength=len(below.raw_tot))
                below.d_cont = _discount(below.cont)
            owner = keys // V  # the context id of each k-gram (sorted, so grouped)
            orders.append(
                _Order(
                    keys=keys,
                    raw=raw,
                    cont=np.zeros_like(raw),
                    raw_tot=np.bincount(owner, weights=raw, minlength=n_ctx),
                    cont_tot=np.zeros(n_ctx),
                    types=np.bincount(owner, minlength=n_ctx),
                    d_raw=_discount(raw),
                    d_cont=0.5,
                )
            )
            if k < max_order:  # contexts one token longer: the shorter context, then the token k steps back
                ckeys, _, ctx = _distinct(ctx * (V + 1) + _back(ids, start, k, V), n_ctx * (V + 1), inverse=True)
                ctx_keys.append(ckeys)
                n_ctx = len(ckeys)
        return cls(V, max_order, eos_id, orders, ctx_keys)

    # ------------------------------------------------------------ probabilities

    def _contexts(self, ids: np.ndarray, order: int) -> list[np.ndarray]:
        """Dense context ids of lengths 0..order-1 at every position (-1: never seen in training)."""
        V = self.vocab_size
        start = _history_start(ids, self.eos_id)
        c = np.zeros(len(ids), dtype=np.int64)
        out = [c]
        for j in range(1, order):
            table = self._ctx_keys[j]
            key = np.where(c >= 0, c * (V + 1) + _back(ids, start, j, V), -1)
            at = np.minimum(np.searchsorted(table, key), len(table) - 1)
            c = np.where((c >= 0) & (table[at] == key), at, -1)
            out.append(c)
        return out

    def _lookup(self, ctxs: list[np.ndarray], w: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        """Counts of order k for (context, target) pairs, broadcast: raw c(h w), N1+(. h w),
        c(h .), sum N1+(. h .), N1+(h .); zeros where the context was never seen."""
        t = self._orders[k - 1]
        c = ctxs[k - 1]
        seen = c >= 0
        cc = np.where(seen, c, 0)
        key = cc * self.vocab_size + w
        at = np.minimum(np.searchsorted(t.keys, key), len(t.keys) - 1)
        hit = seen & (t.keys[at] == key)
        return (
            np.where(hit, t.raw[at], 0),
            np.where(hit, t.cont[at], 0),
            np.where(seen, t.raw_tot[cc], 0.0),
            np.where(seen, t.cont_tot[cc], 0.0),
            np.where(seen, t.types[cc], 0),
        )

    def _mix(self, stats: list[tuple[np.ndarray, ...]], order: int) -> np.ndarray:
        """The Kneser-Ney recursion from p_0 = 1/V up to p_order."""
        p = np.full(stats[0][0].shape, 1.0 / self.vocab_size)
        for k in range(1, order + 1):
            raw, cont, raw_tot, cont_tot, types = stats[k - 1]
            t = self._orders[k - 1]
            a_hw, a_h, d = (raw, raw_tot, t.d_raw) if k == order else (cont, cont_tot, t.d_cont)
            safe = np.where(a_h > 0, a_h, 1.0)
            p = np.where(a_h > 0, (np.maximum(a_hw - d, 0.0) + d * types * p) / safe, p)
        return p

    def _prob(self, ctxs: list[np.ndarray], w: np.ndarray, order: int) -> np.ndarray:
        """p_order(w | context), broadcasting the context ids against the targets."""
        return self._mix([self._lookup(ctxs, w, k) for k in range(1, order + 1)], order)

    def _check_order(self, order: int | None) -> int:
        order = self.max_order if order is None else int(order)
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1..{self.max_order}, got {order}")
        return order

    def logprobs(self, ids: Any, order: int | None = None) -> np.ndarray:
        """ln p(ids[t] | its context) for t = 1 .. len-1 (the first id has nothing before it,
        as charrnn's evaluation never predicts a split's first id)."""
        order = self._check_order(order)
        ids = _as_ids(ids, self.vocab_size)
        if len(ids) < 2:
            return np.zeros(0)
        p = self._prob(self._contexts(ids, order), ids, order)
        return np.log(p[1:])

    def distribution(self, history: Sequence[int], order: int | None = None) -> np.ndarray:
        """p(next | history) over the whole vocabulary, (V,). `history` is every id so far
        (empty: the start of the stream); only its last order-1 ids matter, and none
        from before its last end of document."""
        order = self._check_order(order)
        tail = list(history)[max(len(history) - (order - 1), 0) :] if order > 1 else []
        ids = np.concatenate([_as_ids(tail, self.vocab_size), [0]])  # a placeholder target after the history
        ctxs = [c[-1:] for c in self._contexts(ids, order)]
        return self._prob(ctxs, np.arange(self.vocab_size), order)

    def sample(
        self, length: int, order: int | None = None, seed: int = 0, prime: Sequence[int] = (), stop_at_eos: bool = True
    ) -> list[int]:
        """Up to `length` ids drawn one at a time after `prime`, the same for the same seed.

        Without a prime a corpus with documents starts a new one (the history is one
        end-of-document id). Drawing stops before an end-of-document id unless
        `stop_at_eos` is False, in which case it is kept and the context resets.
        """
        order = self._check_order(order)
        rng = np.random.default_rng(seed)
        history = [int(i) for i in prime] or ([self.eos_id] if self.eos_id is not None else [])
        out: list[int] = []
        for _ in range(length):
            cdf = np.cumsum(self.distribution(history, order))
            idx = int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), self.vocab_size - 1))
            if idx == self.eos_id and stop_at_eos:
                break
            out.append(idx)
            history.append(idx)
            history = history[-order:]
        return out

    # ------------------------------------------------------------ scoring

    def score(self, ids: Any, char_lengths: np.ndarray, order: int | None = None) -> NGramScore:
        """Nats per token and bits per character over ids[1:], as charrnn/evaluate.py reports them."""
        order = self._check_order(order)
        ids = _as_ids(ids, self.vocab_size)
        lp = self.logprobs(ids, order)
        if lp.size == 0:
            return NGramScore(order, math.nan, math.nan, 0, 0.0)
        return self._summary(order, lp, float(np.asarray(char_lengths, dtype=np.float64)[ids[1:]].sum()))

    def scores(self, ids: Any, char_lengths: np.ndarray) -> list[NGramScore]:
        """score() at every order from 1 to max_order (the counts are looked up once)."""
        ids = _as_ids(ids, self.vocab_size)
        if len(ids) < 2:
            return [NGramScore(k, math.nan, math.nan, 0, 0.0) for k in range(1, self.max_order + 1)]
        ctxs = [c[1:] for c in self._contexts(ids, self.max_order)]
        stats = [self._lookup(ctxs, ids[1:], k) for k in range(1, self.max_order + 1)]
        chars = float(np.asarray(char_lengths, dtype=np.float64)[ids[1:]].sum())
        return [self._summary(k, np.log(self._mix(stats, k)), chars) for k in range(1, self.max_order + 1)]

    @staticmethod
    def _summary(order: int, lp: np.ndarray, chars: float) -> NGramScore:
        nats = float(-lp.sum())
        return NGramScore(order, nats / lp.size, nats / max(chars, 1e-9) / LN2, int(lp.size), chars)


def reference(train: Any, val: Any, tokenizer: Any, max_order: int = MAX_ORDER) -> tuple[NGramModel, list[NGramScore]]:
    """Fit on the training ids and score every order on the validation ids, with the
    tokenizer's vocabulary, end-of-document id and character lengths: the n-gram rows
    of a comparison table."""
    model = NGramModel.fit(train, tokenizer.vocab_size, max_order, tokenizer.eos_id)
    return model, model.scores(val, tokenizer.char_lengths())
