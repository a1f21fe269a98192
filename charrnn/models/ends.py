"""How a sequence ends: the chapter's two alternatives to an end-of-sequence token (section 10.2.3).

With `--length-model eos` the softmax predicts the end-of-document token like
any other. The two others take the end out of the softmax (its end-of-document
logit is masked, and the end-of-document targets are not scored by it) and
model it separately:

halt    an extra Bernoulli output at every step, p(the sequence ends after this
        token) = sigmoid(c' + w' h(t)). The positives are rare (one a document), so
        training weights them by w (about the mean document length) and the head
        learns logit(p) + log w; `halt_logit` takes log w back off, so sampling and
        scoring use the calibrated probability.
length  an extra output that predicts the document's length tau at its start,
        P(tau | label) = softmax(b + A[label]) over length bins, and the
        remaining length r(t) = tau - t as an input at every step (a learned
        embedding of its bin), so the text can wind down. Sampling draws tau first,
        then generates exactly tau tokens. b and A start at the training split's
        length histograms (`fit`), as an output bias is best started at the log
        frequencies: from zeros, Adam moves each logit by about the learning rate
        a step, hundreds of steps before 148 bins narrow to the few that occur.

Length bins: 0..64 one each, then geometric (x1.125) up to 2^20; a length is
uniform within its bin, so log P(tau) = log P(bin) - log(bin width). Longer
documents count as 2^20 (the cap is far beyond any line or paragraph).

Per position, `nats()` returns the total: the softmax term where the target is
not the end, plus the halt term after every real token (not after the start
symbol), plus the length term at each document's start. Summed over a split and
divided by its characters this is bits per character on the same scale as the
eos model's: the same data, a different factorisation of its probability.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

EXACT = 64  # lengths 0..64 have a bin each
RATIO = 1.125  # then each bin is this much wider than the last
MAX_LEN = 1 << 20  # longer lengths count as this
REMAINING_EMBED = 8  # width of the remaining-length input


def _lows() -> np.ndarray:
    lows = list(range(EXACT + 2))  # 0..EXACT one each; the next bin starts at EXACT + 1
    while (nxt := math.ceil(lows[-1] * RATIO)) <= MAX_LEN:  # the last bin holds MAX_LEN, where longer lengths go
        lows.append(nxt)
    return np.array(lows, dtype=np.int64)


LOWS = _lows()  # the smallest length in each bin
WIDTHS = np.diff(LOWS, append=LOWS[-1] + (LOWS[-1] - LOWS[-2]))  # lengths per bin
BINS = len(LOWS)


def wide(t: Tensor) -> Tensor:
    """At least fp32 (fp64 stays fp64): losses are summed in full precision whatever autocast did."""
    return t if t.dtype == torch.float64 else t.float()


def bin_of(n: Tensor) -> Tensor:
    """The bin of each length (any shape, >= 0)."""
    lows = torch.as_tensor(LOWS, device=n.device)
    return torch.searchsorted(lows, n.clamp(0, MAX_LEN).long(), right=True) - 1


def bins_np(n: np.ndarray) -> np.ndarray:
    """bin_of for numpy arrays."""
    return np.searchsorted(LOWS, np.clip(n, 0, MAX_LEN), side="right") - 1


def smoothed(counts: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Each row of length-bin counts (R, BINS) as probabilities, (n + weight q) / (N + weight),
    q a log-normal over the bins with the row's own mean and spread of log length
    (the spread at least 0.25); a row with no documents gets the whole corpus' q."""
    from math import erf, sqrt

    lo = np.maximum(LOWS, 0.5).astype(np.float64)  # bin 0 (length 0) only as far as 0.5
    hi = (LOWS + WIDTHS).astype(np.float64)
    mid = np.log(np.sqrt(lo * hi))  # (BINS,) each bin's centre, in log length
    cdf = np.vectorize(lambda z: 0.5 * (1.0 + erf(z / sqrt(2.0))))
    total = counts.sum(0)
    out = np.zeros(counts.shape)
    for r, row in enumerate(counts):
        w = row if row.sum() > 0 else total
        n = max(w.sum(), 1e-9)
        mu = (w * mid).sum() / n
        sd = max(np.sqrt((w * (mid - mu) ** 2).sum() / n), 0.25)
        q = cdf((np.log(hi) - mu) / sd) - cdf((np.log(lo) - mu) / sd)  # (BINS,)
        q = np.maximum(q, 1e-12)
        out[r] = (row + weight * q / q.sum()) / (row.sum() + weight)
    return out


class Ends(nn.Module):
    """The halt or length output of a language model (`kind` "halt" | "length")."""

    def __init__(self, kind: str, hidden: int, labels: int = 0):
        super().__init__()
        if kind not in ("halt", "length"):
            raise ValueError(f"no end model {kind!r}")
        self.kind = kind
        self.register_buffer("eos", torch.tensor(-1))  # the end-of-document id, set from the tokenizer
        if kind == "halt":
            self.halt = nn.Linear(hidden, 1)
            self.register_buffer("log_w", torch.tensor(0.0))  # log of the positives' weight, set from the data
        else:
            self.remaining = nn.Embedding(BINS, REMAINING_EMBED)
            self.prior = nn.Parameter(torch.zeros(BINS))  # b: the length's logits with no label
            self.by_label = nn.Embedding(labels + 1, BINS) if labels else None  # A: each label's shift (the last row: no label)
            if self.by_label is not None:
                nn.init.zeros_(self.by_label.weight)
            self.register_buffer("log_width", torch.as_tensor(np.log(WIDTHS), dtype=torch.float32))

    def setup(self, eos_id: int, halt_weight: float = 1.0) -> "Ends":
        """Set the end-of-document id (and the halt positives' weight) once the data is known."""
        self.eos.fill_(eos_id)
        if self.kind == "halt":
            self.log_w.fill_(math.log(max(halt_weight, 1.0)))
        return self

    @torch.no_grad()
    def fit(self, counts: np.ndarray) -> None:
        """Start b and A at the log frequencies of the training documents' length bins:
        counts (labels + 1, BINS), the last row the documents of every label (or the
        only row, for a model without labels). Each row is smoothed with one
        document's worth of a log-normal fitted to it, so a length near the ones seen
        keeps some probability and a length far from them almost none."""
        logp = np.log(smoothed(counts))  # (C+1, BINS)
        self.prior.copy_(torch.as_tensor(logp[-1]))
        if self.by_label is not None:
            self.by_label.weight.copy_(torch.as_tensor(logp - logp[-1]))  # the "no label" row: 0

    # ------------------------------------------------------------------ inputs

    @property
    def input_size(self) -> int:
        return REMAINING_EMBED if self.kind == "length" else 0

    def inputs(self, remaining: Tensor) -> Tensor:
        """The remaining length's embedding: (...,) -> (..., REMAINING_EMBED)."""
        return self.remaining(bin_of(remaining))

    @staticmethod
    def default_remaining(idx: Tensor) -> Tensor:
        """For a text read on its own: one document that ends where the text ends,
        its first token the start symbol: r(t) = T - 1 - t."""
        T = idx.shape[-1]
        r = torch.arange(T - 1, -1, -1, device=idx.device)
        return r.expand(idx.shape)

    # ----------------------------------------------------------------- outputs

    def mask(self, logits: Tensor) -> Tensor:
        """The softmax never predicts the end-of-document token: the end model does."""
        return logits.index_fill(-1, self.eos.view(1), float("-inf"))

    def halt_logit(self, out: Tensor) -> Tensor:
        """logit p(the sequence ends after this token), calibrated: (..., H) -> (...)."""
        return wide(self.halt(out).squeeze(-1)) - self.log_w

    def length_logp(self, labels: Tensor | None, shape: torch.Size) -> Tensor:
        """log P(bin of tau | label): (..., BINS) for labels (...,), or with no label broadcast to `shape`."""
        logits = self.prior if labels is None or self.by_label is None else self.prior + self.by_label(labels)
        return F.log_softmax(wide(logits), -1).expand(*shape, BINS)

    def nats(self, logits: Tensor, out: Tensor, idx: Tensor, targets: Tensor, labels: Tensor | None,
             remaining: Tensor | None, weighted: bool) -> Tensor:  # fmt: skip
        """Nats of each position (B, T): the softmax's, the halt's or the length's share.
        `weighted` weighs the halt positives (training); unweighted is the true likelihood."""
        eos = self.eos
        end = targets == eos  # (B, T): the document ends after this input
        lm = F.cross_entropy(wide(logits).transpose(1, 2), targets.masked_fill(end, -100), ignore_index=-100, reduction="none")
        if self.kind == "halt":
            z = wide(self.halt(out).squeeze(-1))  # (B, T) the weighted head's logit
            t = end.to(z.dtype)
            if weighted:
                bce = F.binary_cross_entropy_with_logits(z, t, pos_weight=self.log_w.exp(), reduction="none")
            else:
                bce = F.binary_cross_entropy_with_logits(z - self.log_w, t, reduction="none")
            return lm + bce * (idx != eos)
        if remaining is None:
            remaining = self.default_remaining(idx)
        start = idx == eos  # (B, T): this input starts a document whose length is remaining[t]
        b = bin_of(remaining)
        logp = self.length_logp(labels, idx.shape).gather(-1, b.unsqueeze(-1)).squeeze(-1) - self.log_width[b]  # (B, T)
        return lm - logp * start

    # ---------------------------------------------------------------- sampling

    @torch.no_grad()
    def draw_length(self, label: Tensor | None, gen: torch.Generator, at_least: int = 1) -> int:
        """tau ~ P(tau | label), at least `at_least` (a prime already holds some of the document)."""
        logp = self.length_logp(None if label is None else label.view(1), torch.Size([1]))[0].cpu()  # (BINS,)
        lows, widths = torch.as_tensor(LOWS), torch.as_tensor(WIDTHS)
        his = lows + widths  # one past each bin's last length
        room = (his - lows.clamp(min=at_least)).clamp(min=0)  # lengths >= at_least in each bin
        p = logp.exp() * room / widths
        if not bool((p > 0).any()):
            return max(at_least, 1)
        b = int(torch.multinomial(p / p.sum(), 1, generator=gen))
        lo = max(int(lows[b]), at_least)
        return lo + int(torch.randint(int(his[b]) - lo, (1,), generator=gen))
