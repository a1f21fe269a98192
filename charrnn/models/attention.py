"""Attention: where a decoder looks among the encoder's states at each output step.

The chapter's encoder-decoder squeezes the whole input into one fixed-length
context C (section 10.4); attention (section 12.4.5.1) lets every output step read a
weighted average of all the encoder's states instead:

    dot       score(t, s) = d(t) · W h(s) / sqrt(H)         (Luong et al. 2015, "general", scaled)
    additive  score(t, s) = v · tanh(b + W h(s) + U d(t))   (Bahdanau et al. 2015)

    α(t, s) = softmax_s score(t, s)     over the source positions s (padding masked out)
    a(t)    = Σ_s α(t, s) h(s)

with h(s) the encoder's top-layer states and d(t) the decoder's. The keys W h(s)
are computed once per source (`keys`), then reused at every output step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    def __init__(self, kind: str, key_size: int, query_size: int):
        super().__init__()
        if kind not in ("dot", "additive"):
            raise ValueError(f"attention must be dot or additive, got {kind!r}")
        self.kind = kind
        self.W = nn.Linear(key_size, query_size, bias=kind == "additive")
        if kind == "additive":
            self.U = nn.Linear(query_size, query_size, bias=False)
            self.v = nn.Linear(query_size, 1, bias=False)

    def keys(self, h: Tensor) -> Tensor:
        """The encoder's states h (B, S, He) -> their keys (B, S, Hd)."""
        return self.W(h)

    def forward(self, d: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """d (B, T, Hd) decoder states, keys (B, S, Hd), values (B, S, He), mask (B, S) True where
        there is a source character -> a (B, T, He) the attended states, α (B, T, S) float32."""
        if self.kind == "dot":
            scores = d @ keys.transpose(1, 2) / math.sqrt(d.shape[-1])  # (B, T, S)
        else:
            scores = self.v(torch.tanh(keys[:, None] + self.U(d)[:, :, None])).squeeze(-1)  # (B, T, S, Hd) -> (B, T, S)
        alpha = torch.softmax(scores.float().masked_fill(~mask[:, None, :], -math.inf), dim=-1)  # (B, T, S)
        return alpha.to(values.dtype) @ values, alpha
