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

`--chrono T` starts the forget gate from the chrono initialisation instead (Tallec and
Ollivier 2018): b_f = log(u), u ~ U(1, T - 1), and b_i = -b_f, so at the start unit j
keeps its cell for about 1 + u_j steps and writes into it in proportion; for
dependencies as long as T (docs/long-range.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .core import FusedCore, LayerState, Signals
from .scan import lstm_layer


def chrono_bias(n: int, T: float) -> Tensor:
    """(n,) log(u), u ~ U(1, T - 1): a keep gate sigmoid(b) that holds its unit's memory for 1 + u steps."""
    return torch.empty(n).uniform_(1.0, T - 1.0).log_()


class LSTMCore(FusedCore, nn.LSTM):
    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.LSTM.__init__(self, input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self._init_kind(cfg)
        if T := cfg.cell_options().chrono:
            H = cfg.hidden
            for k in range(cfg.layers):
                b_ih, b_hh = getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}")
                with torch.no_grad():
                    b_f = chrono_bias(H, T)
                    b_ih[H : 2 * H] = b_f  # forget
                    b_ih[:H] = -b_f  # input
                    b_hh[: 2 * H] = 0.0

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
