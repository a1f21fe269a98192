"""Beam search: the most probable output of an autoregressive model, approximately.

Greedy decoding takes the single most likely token at every step, which can
miss the most likely sequence: a likely first token may lead only to unlikely
continuations. Beam search keeps the `width` best partial sequences (by total
log-probability) at every step, extends each by every token, and keeps the
best `width` again; a hypothesis that draws the end token is set aside as
finished. It stops when `width` hypotheses have finished (or none is left, or
after `max_len` tokens, when the unfinished ones count as cut off).

Finished hypotheses are ranked by their length-normalised score

    score(y) = log P(y | x) / |y|^α

with |y| the tokens scored (the end token included), because a sum of
log-probabilities otherwise favours short outputs (Wu et al. 2016 use a similar
penalty; α = 0 ranks by probability alone, α = 1 by the mean per token).

The search talks to the model through two functions, so one search serves the
encoder-decoder and the language model alike:

    step(tokens (K,), state) -> (log-probabilities (K, V), state, extra (K, ...) or None)
    reorder(state, rows (K',)) -> the state of the hypotheses kept, in order
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

ALPHA = 0.7  # length normalisation exponent (score = log P / |y|^ALPHA)

Step = Callable[[Tensor, Any], tuple[Tensor, Any, "Tensor | None"]]
Reorder = Callable[[Any, Tensor], Any]


@dataclass(frozen=True)
class Hypothesis:
    ids: tuple[int, ...]  # the tokens written, without the end token
    logp: float  # log-probability of ids, and of the end token when finished
    finished: bool  # ended by the end token
    extras: tuple[Any, ...] = ()  # what `step` gave beside each token (e.g. an attention row), end token included

    def score(self, alpha: float = ALPHA) -> float:
        return normalised(self.logp, len(self.ids) + int(self.finished), alpha)


def normalised(logp: float, n: int, alpha: float = ALPHA) -> float:
    """log P / n^alpha (n >= 1)."""
    return logp / max(n, 1) ** alpha


@torch.no_grad()
def beam_search(step: Step, state: Any, reorder: Reorder, start: int, eos: int | None, width: int, max_len: int,
                alpha: float = ALPHA, device: torch.device | str = "cpu") -> list[Hypothesis]:  # fmt: skip
    """The best `width` hypotheses, best first, starting from the token `start`
    (the first input) and the model's `state` for one row."""
    if width < 1 or max_len < 1:
        raise ValueError("beam search needs width >= 1 and max_len >= 1")
    alive = [Hypothesis((), 0.0, False)]
    done: list[Hypothesis] = []
    tokens = torch.tensor([start], dtype=torch.long, device=device)
    for _ in range(max_len):
        logp, state, extra = step(tokens, state)  # (K, V)
        logp = logp.float()
        V = logp.shape[1]
        total = torch.tensor([h.logp for h in alive], dtype=torch.float64, device=logp.device)[:, None] + logp.double()  # (K, V)
        values, flat = total.view(-1).topk(min(total.numel(), 2 * width))  # room for the ones that end
        rows, kept, new = [], [], []
        for v, f in zip(values.tolist(), flat.tolist()):
            r, tok = divmod(f, V)
            h = alive[r]
            ex = h.extras + ((extra[r].cpu() if extra is not None else None),)
            if tok == eos:
                done.append(Hypothesis(h.ids, v, True, ex))
            else:
                new.append(Hypothesis(h.ids + (tok,), v, False, ex))
                rows.append(r)
                kept.append(tok)
                if len(new) == width:
                    break
        alive = new
        if len(done) >= width or not alive:
            alive = []
            break
        state = reorder(state, torch.tensor(rows, dtype=torch.long, device=device))
        tokens = torch.tensor(kept, dtype=torch.long, device=device)
    return sorted(done + alive, key=lambda h: -h.score(alpha))[:width]  # alive here: cut off at max_len
