"""The recurrent cells as pure step functions: the textbook equations, one timestep.

Each step takes the input x(t) of one layer (B, I), that layer's state at t-1,
and the layer's parameters exactly as PyTorch's fused modules name and lay them
out (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`), and
returns the new state and the named internal signals of the step. `CharRNN.trace`
and the sampler unroll these over time and layers with the fused module's own
parameters, so the two paths share one set of weights by construction.

Notation follows Goodfellow, Bengio & Courville, *Deep Learning*, chapter 10:
U is input-to-hidden (`weight_ih`), W hidden-to-hidden (`weight_hh`), b a bias.
PyTorch keeps two biases where the book has one; their sum is the book's b.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Params = tuple[Tensor, Tensor, Tensor, Tensor]  # U (weight_ih), W (weight_hh), b_ih, b_hh
LayerState = tuple[Tensor, ...]  # (h,) or (h, c), each (B, H)
Signals = dict[str, Tensor]


def rnn_step(x: Tensor, state: LayerState, p: Params) -> tuple[LayerState, Signals]:
    """The vanilla RNN (eq. 10.8-10.9):  a(t) = b + W h(t-1) + U x(t);  h(t) = tanh(a(t))."""
    U, W, b_ih, b_hh = p
    (h,) = state
    a = F.linear(x, U, b_ih) + F.linear(h, W, b_hh)  # (B, H)
    h = torch.tanh(a)
    return (h,), {"h": h, "a": a}


def lstm_step(x: Tensor, state: LayerState, p: Params) -> tuple[LayerState, Signals]:
    """The LSTM (section 10.10.1), gate rows in PyTorch's order i, f, g, o.

    input gate  i = sigmoid(b_i + U_i x + W_i h)
    forget gate f = sigmoid(b_f + U_f x + W_f h)     (how much of the old cell to keep)
    candidate   g = tanh(b_g + U_g x + W_g h)
    output gate o = sigmoid(b_o + U_o x + W_o h)
    cell        c' = f * c + i * g                   (the self-loop with a learned time constant)
    hidden      h' = o * tanh(c')
    """
    U, W, b_ih, b_hh = p
    h, c = state
    gates = F.linear(x, U, b_ih) + F.linear(h, W, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return (h, c), {"h": h, "c": c, "input": i, "forget": f, "candidate": g, "output": o}


def gru_step(x: Tensor, state: LayerState, p: Params) -> tuple[LayerState, Signals]:
    """The gated recurrent unit (section 10.10.2), rows in PyTorch's order r, z, n.

    reset  r = sigmoid(b_r + U_r x + W_r h)
    update z = sigmoid(b_z + U_z x + W_z h)
    new    n = tanh(b_in + U_n x + r * (W_n h + b_hn))   (reset applied after the matmul, as PyTorch does)
    hidden h' = (1 - z) * n + z * h                      (z is the leaky unit's keep-the-past weight)
    """
    U, W, b_ih, b_hh = p
    (h,) = state
    gx = F.linear(x, U, b_ih)  # (B, 3H)
    gh = F.linear(h, W, b_hh)  # (B, 3H)
    xr, xz, xn = gx.chunk(3, dim=1)
    hr, hz, hn = gh.chunk(3, dim=1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h = (1 - z) * n + z * h
    return (h,), {"h": h, "reset": r, "update": z, "new": n}


@dataclass(frozen=True)
class CellSpec:
    """What the model needs to know about a cell: its fused module, its step
    function and the names of its state and its internal signals."""

    name: str
    module: type[nn.RNNBase]
    step: Callable[[Tensor, LayerState, Params], tuple[LayerState, Signals]]
    state_names: tuple[str, ...]
    signals: tuple[str, ...]
    gates: tuple[str, ...]  # the signals that are gates in (0, 1), for saturation statistics


CELLS: dict[str, CellSpec] = {
    "rnn": CellSpec("rnn", nn.RNN, rnn_step, ("h",), ("h", "a"), ()),
    "lstm": CellSpec(
        "lstm", nn.LSTM, lstm_step, ("h", "c"), ("h", "c", "input", "forget", "candidate", "output"), ("input", "forget", "output")
    ),
    "gru": CellSpec("gru", nn.GRU, gru_step, ("h",), ("h", "reset", "update", "new"), ("reset", "update")),
}


def register_cell(spec: CellSpec) -> None:
    """New cells (leaky units, echo-state reservoirs...) join here."""
    CELLS[spec.name] = spec
