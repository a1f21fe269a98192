"""The vanilla RNN of section 10.2, on PyTorch's fused nn.RNN.

    a(t) = b + W h(t-1) + U x(t)        (eq. 10.8)
    h(t) = tanh(a(t))                   (eq. 10.9)

U is input-to-hidden (`weight_ih`), W hidden-to-hidden (`weight_hh`). PyTorch
keeps two biases where the book has one; their sum is the book's b. The output
o(t) = c + V h(t) (eq. 10.10) is the model's head (lm.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .core import FusedCore, LayerState, Signals
from .scan import rnn_layer


class RNNCore(FusedCore, nn.RNN):
    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.RNN.__init__(self, input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self._init_kind(cfg)

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        U, W, b_ih, b_hh = p
        return torch.nn.functional.linear(x, U, b_ih + b_hh)  # U x + b

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...]) -> tuple[LayerState, Signals]:
        W = p[1]
        (h,) = state
        a = torch.addmm(xp, h, W.t())  # (B, H)  a = b + W h + U x
        h = torch.tanh(a)
        return (h,), {"h": h, "a": a}

    def scan_layer(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...], keep: Tensor, cols: frozenset[int],
                   mm: torch.dtype | None = None) -> tuple[Tensor, LayerState]:  # fmt: skip
        (h,) = state
        out, h = rnn_layer(xp, p[1], h, keep, cols, mm)
        return out, (h,)
