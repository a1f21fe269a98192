"""The gated recurrent unit (section 10.10.2), on PyTorch's fused nn.GRU.

Rows in PyTorch's order r, z, n:

    reset  r = sigmoid(b_r + U_r x + W_r h)
    update z = sigmoid(b_z + U_z x + W_z h)
    new    n = tanh(b_in + U_n x + r * (W_n h + b_hn))   (reset applied after the matmul, as PyTorch does)
    hidden h' = (1 - z) * n + z * h                      (z is the leaky unit's keep-the-past weight)

`--chrono T` starts the update gate's bias at log(u), u ~ U(1, T - 1) (Tallec and Ollivier
2018, as lstm.py does the forget gate's), so the units keep h for 1 to T steps at the start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .core import FusedCore, LayerState, Signals
from .lstm import chrono_bias
from .scan import gru_layer


class GRUCore(FusedCore, nn.GRU):
    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.GRU.__init__(self, input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self._init_kind(cfg)
        if T := cfg.cell_options().chrono:
            H = cfg.hidden
            for k in range(cfg.layers):
                with torch.no_grad():
                    getattr(self, f"bias_ih_l{k}")[H : 2 * H] = chrono_bias(H, T)  # update (keep)
                    getattr(self, f"bias_hh_l{k}")[H : 2 * H] = 0.0

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        U, W, b_ih, b_hh = p
        return F.linear(x, U, b_ih)  # (..., 3H)

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...]) -> tuple[LayerState, Signals]:
        _, W, _, b_hh = p
        (h,) = state
        gh = F.linear(h, W, b_hh)  # (B, 3H)
        xr, xz, xn = xp.chunk(3, dim=1)
        hr, hz, hn = gh.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return (h,), {"h": h, "reset": r, "update": z, "new": n}

    def scan_layer(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...], keep: Tensor, cols: frozenset[int],
                   mm: torch.dtype | None = None) -> tuple[Tensor, LayerState]:  # fmt: skip
        (h,) = state
        out, h = gru_layer(xp, p[1], p[3], h, keep, cols, mm)
        return out, (h,)
