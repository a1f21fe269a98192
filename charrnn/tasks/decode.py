"""Decoding an encoder-decoder, and scoring what it writes.

    greedy      y(t) = argmax P(y | y(<t), x)              one batch of sources at a time
    sampling    y(t) ~ softmax(o(t) / temperature)
    beam        beam.py, for one source at a time

Every decoder starts from the end token (which doubles as the start symbol) and
stops at the end token or after `max_len` characters. Scores are the exact-match
rate and the character error rate, CER = (Levenshtein edits from the output to
the target) / (target characters), over all pairs and by source length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.seq2seq import Encoded, Seq2Seq
from .beam import Hypothesis, beam_search


def max_output(train_max_target: int, source_len: int) -> int:
    """How long an output may grow: twice the longest training target or twice the source, and a margin."""
    return 2 * max(train_max_target, source_len) + 8


@dataclass(frozen=True)
class Output:
    ids: list[int]  # without the end token
    logp: float  # of ids and, when finished, of the end token
    finished: bool
    attention: np.ndarray | None  # (steps, S) over the row's own source characters, steps = len(ids) + finished


@torch.no_grad()
def decode(model: Seq2Seq, src: Tensor, src_len: Tensor, eos: int, max_len: int, temperature: float = 0.0,
           gen: torch.Generator | None = None, attention: bool = False) -> list[Output]:  # fmt: skip
    """Greedy (temperature 0) or sampled outputs for a batch of left-padded sources."""
    enc, layers = model.start(src, src_len)
    B, S = src.shape
    y = torch.full((B,), eos, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    logp = torch.zeros(B, dtype=torch.float64, device=src.device)
    ys, alphas = [], []
    for _ in range(max_len):
        logits, layers, alpha = model.step(y, layers, enc)
        lp = F.log_softmax(logits.float(), -1)  # (B, V)
        if temperature == 0:
            y = lp.argmax(-1)
        else:
            probs = torch.softmax(logits.float().cpu() / temperature, -1)
            y = torch.multinomial(probs, 1, generator=gen)[:, 0].to(src.device)
        logp += torch.where(done, 0.0, lp.gather(1, y[:, None])[:, 0].double())
        ys.append(y)
        if attention and alpha is not None:
            alphas.append(alpha)
        done |= y == eos
        if bool(done.all()):
            break
    out = torch.stack(ys, 1).cpu().numpy()  # (B, steps)
    att = torch.stack(alphas, 1).cpu().numpy() if alphas else None  # (B, steps, S)
    results = []
    for b in range(B):
        row = out[b].tolist()
        finished = eos in row
        n = row.index(eos) if finished else len(row)
        a = att[b, : n + int(finished), S - int(src_len[b]) :] if att is not None else None
        results.append(Output(row[:n], float(logp[b]), finished, a))
    return results


def beam(model: Seq2Seq, src: Tensor, eos: int, width: int, max_len: int) -> list[Hypothesis]:
    """Beam search for one unpadded source (1, S); each hypothesis' extras are its attention rows."""
    enc, layers = model.start(src, torch.tensor([src.shape[1]], device=src.device))

    def step(tokens: Tensor, state: tuple[list, Encoded]) -> tuple[Tensor, tuple[list, Encoded], Tensor | None]:
        layers, e = state
        logits, layers, alpha = model.step(tokens, layers, e)
        return F.log_softmax(logits.float(), -1), (layers, e), alpha

    def reorder(state: tuple[list, Encoded], rows: Tensor) -> tuple[list, Encoded]:
        layers, e = state
        return [tuple(s[rows] for s in layer) for layer in layers], e.rows(rows)

    return beam_search(step, (layers, enc), reorder, eos, eos, width, max_len, device=src.device)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def length_edges(lengths: np.ndarray, cut: int, bins: int = 8) -> np.ndarray:
    """Bucket edges over source lengths (bucket b is edges[b] .. edges[b + 1] - 1): about `bins`
    ranges of equal width, with an edge at `cut` (the first length never seen in training)."""
    lo, hi = int(lengths.min(initial=1)), int(lengths.max(initial=1))
    width = max(1, -(-(hi - lo + 1) // bins))
    edges = np.concatenate([np.arange(lo, min(cut, hi + 1), width), np.arange(max(cut, lo), hi + 1, width), [hi + 1]])
    return np.unique(edges)
