"""A sequence classifier: one output after the whole sequence (section 10.2, figure 10.5).

    x(t) = E[idx(t)]                    the character's embedding
    h(t) = core(x(t), state(t-1))       any kind in the registry, from a zero state
    z    = pool(h(1), ..., h(τ))        last: h(τ)
                                        mean: (1/τ) Σ_t h(t)
                                        max:  max_t h(t), unit by unit
                                        attn: Σ_t α(t) h(t),  α = softmax_t(v·tanh(b + W h(t)))
    o    = c + V z,   P(y | x) = softmax(o) over the labels

Bidirectional (`--bidirectional`, section 10.3): a second core of the same kind,
its own weights, reads the document from its end, g(t) = core_b(x(t), g(t+1));
each position's state is [h(t); g(t)] and the pool reads those (last:
[h(τ); g(1)], the two states that have read the whole document).

Documents of a batch are right-padded to the longest: the recurrence is causal,
so the padding after a document never reaches its own states, and the pooling
reads only positions t < τ.

`prefix_logits` gives the answer the model would give after every prefix of
the text, which is what `charrnn predict --trace` draws: with the last state
that is the head on h(t); with the mean, the running mean; with attention, the
softmax over the positions read so far; with the max, the running max. A bidirectional model's backward half has
read the whole text, so its prefix answer is the pool over positions up to t of
[h(t); g(t)] (last: [h(t); g(1)]), and its trace's signals are the forward core's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from . import registry
from .base import Model
from .core import State
from .lm import Trace


class SequenceClassifier(Model):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        opts = cfg.task_options()
        if cfg.vocab_size < 1 or opts.classes < 2:
            raise ValueError("a classifier needs ModelConfig.vocab_size from its tokenizer and at least two classes")
        self.cfg, self.pool_kind = cfg, opts.pool
        self.kind: registry.Kind = registry.get(cfg.cell)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.core = self.kind.load()(cfg, cfg.embed)
        self.bidirectional = opts.bidirectional
        self.back = self.kind.load()(cfg, cfg.embed) if opts.bidirectional else None  # reads each document from its end
        H = self.core.out_size * (2 if opts.bidirectional else 1)
        if self.pool_kind == "attn":
            self.attn_w = nn.Linear(H, H)  # b + W h(t)
            self.attn_v = nn.Linear(H, 1, bias=False)  # v
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, opts.classes)

    def init_state(self, batch_size: int) -> State:
        p = self.head.weight
        return self.core.init_state(batch_size, p.device, p.dtype)

    def states(self, idx: Tensor, lengths: Tensor | None = None) -> Tensor:
        """idx (B, T) right-padded, lengths (B,) -> every position's state from a zero state:
        the top layer's h(t), (B, T, H), or [h(t); g(t)], (B, T, 2H), when bidirectional."""
        x = self.embed(idx)  # (B, T, E)
        out, _ = self.core(x, self.init_state(idx.shape[0]))
        if self.back is None:
            return out
        flip = reversal(idx.shape[1], lengths, idx.device, idx.shape[0])  # (B, T)
        g, _ = self.back(x.gather(1, flip[..., None].expand_as(x)), self.init_state(idx.shape[0]))  # (B, T, H) from the end
        return torch.cat([out, g.gather(1, flip[..., None].expand_as(g))], -1)  # (B, T, 2H): g back in the text's order

    def _scores(self, out: Tensor) -> Tensor:
        return self.attn_v(torch.tanh(self.attn_w(out))).squeeze(-1).float()  # (B, T)

    def pool(self, out: Tensor, lengths: Tensor) -> Tensor:
        """out (B, T, H), lengths (B,) -> z (B, H), reading positions t < length only."""
        B, T, _ = out.shape
        if self.pool_kind == "last":
            z = out[torch.arange(B, device=out.device), lengths - 1]  # (B, H)
            if self.back is not None:  # [h(τ); g(1)]
                half = out.shape[-1] // 2
                z = torch.cat([z[:, :half], out[:, 0, half:]], -1)
            return z
        mask = torch.arange(T, device=out.device)[None, :] < lengths[:, None]  # (B, T)
        if self.pool_kind == "mean":
            return (out * mask[..., None].to(out.dtype)).sum(1) / lengths[:, None].to(out.dtype)
        if self.pool_kind == "max":  # each unit's strongest response anywhere in the document
            return out.masked_fill(~mask[..., None], -math.inf).amax(1)
        alpha = torch.softmax(self._scores(out).masked_fill(~mask, -math.inf), dim=1)  # (B, T)
        return (alpha.to(out.dtype)[..., None] * out).sum(1)

    def forward(self, idx: Tensor, targets: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) right-padded, lengths (B,) -> logits (B, C), mean cross-entropy if targets."""
        if lengths is None:
            lengths = torch.full((idx.shape[0],), idx.shape[1], dtype=torch.long, device=idx.device)
        z = self.pool(self.states(idx, lengths), lengths)  # (B, H)
        logits = self.head(self.drop(z))  # (B, C)
        loss = F.cross_entropy(logits.float(), targets) if targets is not None else None
        return logits, loss

    def prefix_logits(self, out: Tensor) -> Tensor:
        """The answer after every prefix: out (B, T, H) -> logits (B, T, C)."""
        T = out.shape[1]
        if self.pool_kind == "last":
            z = out
            if self.back is not None:  # [h(t); g(1)]
                half = out.shape[-1] // 2
                z = torch.cat([out[..., :half], out[:, :1, half:].expand(-1, T, -1)], -1)
        elif self.pool_kind == "mean":
            z = out.cumsum(1) / torch.arange(1, T + 1, device=out.device, dtype=out.dtype)[None, :, None]
        elif self.pool_kind == "max":
            z = out.cummax(1).values
        else:
            future = torch.ones(T, T, dtype=torch.bool, device=out.device).triu(1)  # (T, T): s > t is not read yet
            alpha = torch.softmax(self._scores(out)[:, None, :].masked_fill(future, -math.inf), dim=-1)  # (B, T, T)
            z = alpha.to(out.dtype) @ out  # (B, T, H)
        return self.head(self.drop(z))

    def attention(self, idx: Tensor) -> Tensor | None:
        """The attention pool's weights over the whole text, (B, T); None for the other pools."""
        if self.pool_kind != "attn":
            return None
        return torch.softmax(self._scores(self.states(idx)), dim=1)

    def trace(self, idx: Tensor, state: State | None = None) -> Trace:
        """The per-step path over idx (B, T) with every signal; logits (B, T, C) after each prefix."""
        tr = self.core.trace(self.embed(idx), self.init_state(idx.shape[0]) if state is None else state)
        out = tr.out
        if self.back is not None:  # the backward half over the whole text (its signals are not traced)
            out = torch.cat([out, self.states(idx)[..., out.shape[-1] :]], -1)
        return Trace(logits=self.prefix_logits(out), signals=tr.signals, state=tr.state, steps=tr.steps)


def reversal(T: int, lengths: Tensor | None, device: torch.device, B: int) -> Tensor:
    """(B, T) positions that reverse each row's first `lengths` steps and keep its padding
    where it is: x.gather(1, flip) reads a document from its end, and the same gather
    puts states computed on it back in the text's order (the map is its own inverse)."""
    t = torch.arange(T, device=device)[None, :].expand(B, T)  # (B, T)
    if lengths is None:
        return T - 1 - t
    L = lengths[:, None]
    return torch.where(t < L, L - 1 - t, t)
