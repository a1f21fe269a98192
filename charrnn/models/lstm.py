"""Long short-term memory (section 10.10.1), on PyTorch's fused nn.LSTM.

Gate rows in PyTorch's order i, f, g, o:

    input gate  i = sigmoid(b_i + U_i x + W_i h)
    forget gate f = sigmoid(b_f + U_f x + W_f h)     (how much of the old cell to keep)
    candidate   g = tanh(b_g + U_g x + W_g h)
    output gate o = sigmoid(b_o + U_o x + W_o h)
    cell        c' = f * c + i * g                   (the self-loop with a learned time constant)
    hidden      h' = o * tanh(c')

The forget gate's bias starts at 1 (Gers et al. 2000; Jozefowicz et al. 2015), not
PyTorch's uniform(-1/sqrt(H), 1/sqrt(H)) around 0: f starts near sigmoid(1) = 0.73
instead of 0.5, so at the start the cell keeps its content for a few steps rather than
halving it every step, and the gradient through c reaches back far enough to learn what
to keep. PyTorch keeps two biases; b_ih's forget rows hold the 1, b_hh's start at 0.
Only the initialisation: a checkpoint loads its own weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .core import FusedCore, LayerState, Signals
from .scan import lstm_layer


FORGET_BIAS = 1.0


class LSTMCore(FusedCore, nn.LSTM):
    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.LSTM.__init__(self, input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self._init_kind(cfg)
        with torch.no_grad():
            H = cfg.hidden
            for k in range(cfg.layers):
                getattr(self, f"bias_ih_l{k}")[H : 2 * H].fill_(FORGET_BIAS)  # rows i, f, g, o: f is the second block
                getattr(self, f"bias_hh_l{k}")[H : 2 * H].zero_()

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        U, W, b_ih, b_hh = p
        return F.linear(x, U, b_ih + b_hh)  # (..., 4H)

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...]) -> tuple[LayerState, Signals]:
        W = p[1]
        h, c = state
        gates = torch.addmm(xp, h, W.t())  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return (h, c), {"h": h, "c": c, "input": i, "forget": f, "candidate": g, "output": o}

    def scan_layer(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...], keep: Tensor, cols: frozenset[int]) -> tuple[Tensor, LayerState]:
        h, c = state
        out, h, c = lstm_layer(xp, p[1], h, c, keep, cols)
        return out, (h, c)
