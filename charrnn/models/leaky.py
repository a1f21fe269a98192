"""Leaky units with several time scales, and skip connections through time (section 10.9).

    a(t) = b + sum_d W_d h(t-d) + U x(t)          d in --delays (1 alone by default)
    h(t) = (1 - α) ⊙ h(t-1) + α ⊙ tanh(a(t))       α = 1/τ, one time constant τ per unit

A unit with τ = 1 is a vanilla RNN unit. A unit with τ = 100 keeps 99% of its
past at every step, so what it holds, and the gradient that flows back through
it, fades over about τ steps instead of a few (section 10.9.2). The time
constants are log-spaced from 1 to --tau-max across the units of every layer,
fixed, or learned with --learn-tau (τ = e^s with s clamped at 0, so τ >= 1).

Skip connections through time (section 10.9.1): with --delays 1,4,16 the
pre-activation also reads h(t-4) and h(t-16), each through its own matrix, so a
gradient crosses 16 steps in one hop instead of sixteen. Leaving 1 out
(--delays 4,16) removes the length-one connections, as section 10.9.3 describes;
the leak (1 - α) h(t-1) stays.

The state carries the last D = max(delays) hidden states: `h` (L, B, H) and
`past` (L, B, D-1, H) holding h(t-2) ... h(t-D) (empty when D = 1).
Parameters of layer k: U (H, I), W (H, n·H) with the n delays' matrices side by
side in the order given, b (H,), log_tau (H,) (frozen unless --learn-tau).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .core import LayerState, Recurrent, Signals, State, keep_rows
from .options import LeakyOptions


def time_constants(hidden: int, tau_max: float) -> Tensor:
    """(H,) τ log-spaced from 1 to tau_max."""
    return torch.logspace(0.0, math.log10(tau_max), hidden, dtype=torch.float64).float()


class LeakyCore(Recurrent):
    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        opts: LeakyOptions = cfg.cell_options()
        H, L = cfg.hidden, cfg.layers
        self.delays = tuple(opts.delays)
        self.depth = max(self.delays)  # D: how many past states the recurrence reads
        n = len(self.delays)
        # U and b: PyTorch's nn.RNN initialisation, uniform(-1/sqrt(H), 1/sqrt(H)). W: the shortest
        # delay's matrix starts as the identity (Le et al. 2015's IRNN start; Mikolov et al. 2015):
        # tanh(h + U x + b) ~ h for a small h, so each unit starts as an integrator that holds what
        # it was given, at its own time constant, and the gradient through it does not vanish at
        # the start. From PyTorch's random start, leaky units carried nothing across the 48-step
        # copy gap in 1,500 steps (0.427 bits/char, the no-memory bound); from the identity,
        # 0.395 (bench/long_range.py, docs/long-range.md). Longer delays' matrices start random,
        # sharing one fan-in, so n of them start as loud as one.
        k_in, k_rec = 1 / math.sqrt(H), 1 / math.sqrt(n * H)
        self.U = nn.ParameterList(nn.Parameter(torch.empty(H, input_size if j == 0 else H).uniform_(-k_in, k_in)) for j in range(L))
        self.W = nn.ParameterList(nn.Parameter(self.recurrent_init(H, k_rec)) for _ in range(L))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(H).uniform_(-k_in, k_in)) for _ in range(L))
        log_tau = time_constants(H, opts.tau_max).log()
        self.log_tau = nn.ParameterList(nn.Parameter(log_tau.clone(), requires_grad=opts.learn_tau) for _ in range(L))

    def recurrent_init(self, H: int, k: float) -> Tensor:
        """(H, n·H): identity for the shortest delay, uniform(-k, k) for the others."""
        W = torch.empty(H, len(self.delays) * H).uniform_(-k, k)
        j = self.delays.index(min(self.delays))
        if not W.is_meta:
            W[:, j * H : (j + 1) * H] = torch.eye(H)
        return W

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.hidden_size,), (self.depth - 1, self.hidden_size)

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.U[k], self.W[k], self.b[k], self.log_tau[k]

    @staticmethod
    def alpha(log_tau: Tensor) -> Tensor:
        """α = 1/τ = e^{-s}, s clamped at 0 so that τ >= 1 (a unit never overshoots its target)."""
        return torch.exp(-log_tau.clamp(min=0.0))

    def unit_info(self) -> dict[str, Tensor]:
        return {"tau": torch.stack([1.0 / self.alpha(s.detach()) for s in self.log_tau])}  # (L, H)

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        U, _, b, _ = p
        return torch.nn.functional.linear(x, U, b)  # (..., H)  U x + b

    def _delayed(self, hist: list[Tensor]) -> Tensor:
        """(B, n·H): h(t-d) for every delay d, side by side; hist[j] = h(t-1-j)."""
        if len(self.delays) == 1:
            return hist[self.delays[0] - 1]
        return torch.cat([hist[d - 1] for d in self.delays], 1)

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Tensor, ...]) -> tuple[LayerState, Signals]:
        _, W, _, log_tau = p
        h, past = state  # (B, H), (B, D-1, H)
        hist = [h, *past.unbind(1)]
        a = torch.addmm(xp, self._delayed(hist), W.t())  # (B, H)  a = b + sum_d W_d h(t-d) + U x
        cand = torch.tanh(a)
        h_new = h + self.alpha(log_tau) * (cand - h)  # (1 - α) h + α tanh(a)
        past = torch.cat([h.unsqueeze(1), past[:, :-1]], 1) if self.depth > 1 else past
        return (h_new, past), {"h": h_new, "candidate": cand}

    def unrolled(self, x: Tensor, state: State, reset: Tensor | None = None, h0: State | None = None) -> tuple[Tensor, State]:
        """The training path: as core.Unrolled's, with the past states kept in a list
        (h(t-d) is an index, not a copy of the whole history at every step). A row
        restarts where its document starts, from zeros or from h0 (each (L, B, T, ...))."""
        at: set[int] = set()
        if reset is not None and bool(reset.any()):
            at = set(reset.any(0).nonzero().flatten().tolist())
        finals = []
        for k, (h, past) in enumerate(self.split_state(state)):
            p = self.layer_params(k)
            xp = self.project(x, p)  # (B, T, H): every timestep's input share in one matrix product
            Wt, alpha = p[1].t(), self.alpha(p[3])
            hist = [h, *past.unbind(1)]  # hist[j] = h(t-1-j)
            outs = []
            for t, xp_t in enumerate(xp.unbind(1)):
                if t in at:
                    start = None if h0 is None else [h0[0][k, :, t], *h0[1][k, :, t].unbind(1)]
                    hist = list(keep_rows(hist, ~reset[:, t], 0, start))  # type: ignore[index]
                h = hist[0]
                h = h + alpha * (torch.tanh(torch.addmm(xp_t, self._delayed(hist), Wt)) - h)  # (B, H)
                outs.append(h)
                hist = [h, *hist[:-1]] if self.depth > 1 else [h]
            past = torch.stack(hist[1:], 1) if self.depth > 1 else past
            finals.append((h, past))
            x = self._between(torch.stack(outs, 1), k)  # (B, T, H)
        if h0 is not None and not at:  # no document starts here: h0 still joins the graph, as DDP wants of every parameter
            x = x + 0.0 * sum(h.sum() for h in h0)
        return x, self.join_state(finals)

    @classmethod
    def describe(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Any]:
        opts: LeakyOptions = cfg.cell_options()
        facts: dict[str, Any] = {}
        for k in range(cfg.layers):
            s = weights.get(f"core.log_tau.{k}")
            if s is not None:
                tau = torch.exp(s.double().clamp(min=0.0))
                facts[f"time constants, layer {k}"] = (
                    f"τ {float(tau.min()):.1f} to {float(tau.max()):.1f}, median {float(tau.median()):.1f} "
                    f"({'learned' if opts.learn_tau else 'fixed, log-spaced'})"
                )
        facts["delays"] = ",".join(map(str, opts.delays))
        return facts
