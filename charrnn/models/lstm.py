"""Long short-term memory (section 10.10.1), on PyTorch's fused nn.LSTM.

Gate rows in PyTorch's order i, f, g, o:

    input gate  i = sigmoid(b_i + U_i x + W_i h)
    forget gate f = sigmoid(b_f + U_f x + W_f h)     (how much of the old cell to keep)
    candidate   g = tanh(b_g + U_g x + W_g h)
    output gate o = sigmoid(b_o + U_o x + W_o h)
    cell        c' = f * c + i * g                   (the self-loop with a learned time constant)
    hidden      h' = o * tanh(c')

The gates start from PyTorch's uniform(-1/sqrt(H), 1/sqrt(H)), the forget gate's bias
too. A forget-gate bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015) was tried as the
default and measured worse on prose in the short runs charrnn makes: the default 2x256
LSTM on tinyshakespeare, same seed and code, 3.004 bits/char at step 250 and 2.791 at
600 against 2.880 and 2.629 from PyTorch's start (bench/RESULTS.md, "Long-range
dependencies"). With it, a 1x128 LSTM reached 0.308 bits/char on the 48-step copy in
1,500 steps (perfect 0.279, no memory 0.427); it was not measured apart from PyTorch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .core import FusedCore, LayerState, Signals
from .scan import lstm_layer


class LSTMCore(FusedCore, nn.LSTM):
    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.LSTM.__init__(self, input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self._init_kind(cfg)

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

    def scan_layer(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...], keep: Tensor, cols: frozenset[int],
                   mm: torch.dtype | None = None) -> tuple[Tensor, LayerState]:  # fmt: skip
        h, c = state
        out, h, c = lstm_layer(xp, p[1], h, c, keep, cols, mm)
        return out, (h, c)
