"""Conditioning on a context: a model of P(y | x) for a label x (section 10.2.4).

The chapter names three ways to give an RNN a fixed-size context x, here a
document's label, as a learned embedding C[x]:

    input   an extra input at every step:   x(t) = [E[idx(t)]; C[x]]
    init    the initial state at a document's start:
                                           h(0) = tanh(b + W C[x])     (every layer, every state tensor)
    both    the two together

This module lives around the recurrent core, not inside any cell: the input is
wider by the embedding's width, and the core's own reset (models/core.py)
restarts a document from h(0) instead of zeros. So every kind in the registry
is conditioned the same way. Row `labels` of the embedding is "no label": label
dropout trains it, so the same model samples unconditionally too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..tasks.lm_options import LMOptions
from .core import State


class LabelContext(nn.Module):
    def __init__(self, opts: LMOptions):
        super().__init__()
        self.labels = opts.labels
        self.none = opts.labels  # the "no label" row
        self.embed = nn.Embedding(opts.labels + 1, opts.label_embed)  # C
        self.feeds_input = opts.label_input
        self.init: nn.Linear | None = None  # W, b of h(0); made by attach() once the core's state is known
        self._wants_init = opts.label_init
        self._shapes: tuple[tuple[int, ...], ...] = ()
        self._layers = 0

    @property
    def input_size(self) -> int:
        """How much wider the core's input is (0 when the label is not an input)."""
        return self.embed.embedding_dim if self.feeds_input else 0

    def attach(self, layers: int, shapes: tuple[tuple[int, ...], ...]) -> None:
        """Make h(0)'s projection for a core of `layers` layers whose state tensors have `shapes` (one layer, no batch)."""
        if not self._wants_init:
            return
        self._layers, self._shapes = layers, tuple(shapes)
        width = layers * sum(math.prod(s) for s in shapes)
        self.init = nn.Linear(self.embed.embedding_dim, width)

    def fill(self, labels: Tensor | None, like: Tensor) -> Tensor:
        """`labels`, or "no label" everywhere (the shape of `like`) when there are none."""
        if labels is None:
            return torch.full(like.shape, self.none, dtype=torch.long, device=like.device)
        return labels

    def vectors(self, labels: Tensor) -> Tensor:
        """C[labels]: (...,) -> (..., D)."""
        return self.embed(labels)

    def start(self, labels: Tensor) -> State:
        """h(0) = tanh(b + W C[x]) for labels (...,): one tensor per state name, each (L, ..., *shape)."""
        assert self.init is not None
        a = torch.tanh(self.init(self.embed(labels)))  # (..., L * sum of the state sizes)
        lead = a.shape[:-1]
        out, at = [], 0
        for shape in self._shapes:
            n = self._layers * math.prod(shape)
            part = a[..., at : at + n].reshape(*lead, self._layers, *shape)  # (..., L, *shape)
            out.append(part.movedim(len(lead), 0))  # (L, ..., *shape)
            at += n
        return tuple(out)
