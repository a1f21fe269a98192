"""The recurrent core of every model: a stack of L layers run over time, two ways.

A kind (registry.py) implements three small functions for one layer, and the
core does the rest:

    layer_params(k)       the parameters of layer k, as a tuple
    project(x, p)         the input's share of the pre-activations, x (..., I) -> (..., G):
                          one matrix product, so a whole sequence is projected at once
    recur(xp, state, p)   one timestep: the projected input of step t and the layer's
                          state at t-1 -> (the state at t, the named signals of the step)

From these, `Unrolled` gives every core the same three paths:

- `unrolled()`: training without a fused module. Layer by layer, the input
  projections of all T timesteps in one matrix product before the time loop, then
  `recur` over `xp.unbind(1)` (slicing x[:, t] makes backward far slower), the
  state zeroed at document starts. On a 2-core CPU this runs a 2x256 vanilla RNN
  at 1.0-1.1x the speed of the fused nn.RNN (bench/generic_core.py).
- `step()`: one timestep of every layer, the sampler's hot path.
- `trace()`: the whole text with every signal kept, under autograd, for the
  inspector and the TUI.

`FusedCore` is for kinds that are also a fused PyTorch module (nn.RNN, nn.LSTM,
nn.GRU subclass it): `forward()` runs cuDNN / oneDNN, the other paths read the
same parameters, so there is one set of weights and the state_dict keys stay
PyTorch's own (`core.weight_ih_l0`, ...).

A state is a tuple of tensors, one per name in the kind's `state`, each
(L, B, ...): the batch is always dimension 1. One layer's share is (B, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import ModelConfig
from . import registry

State = tuple[Tensor, ...]  # each (L, B, ...)
LayerState = tuple[Tensor, ...]  # each (B, ...)
Signals = dict[str, Tensor]


@dataclass(frozen=True)
class CoreTrace:
    out: Tensor  # (B, T, H) the top layer's output
    state: State  # after the last step
    signals: dict[str, Tensor]  # name -> (L, B, T, ...)
    steps: dict[str, list[list[Tensor]]]  # name -> [layer][t] -> (B, ...): the graph's own tensors, for autograd.grad


def keep_rows(state: State | LayerState, keep: Tensor, dim: int, start: State | LayerState | None = None) -> tuple[Tensor, ...]:
    """Restart the batch rows whose `keep` (B,) is 0: each tensor's batch is at `dim`.
    They start again from zeros, or from `start` (the same shapes as `state`) where
    given: a model conditioned on a context sets h(0) at each document's start."""
    out = []
    for j, s in enumerate(state):
        shape = [1] * s.dim()
        shape[dim] = -1
        k = keep.to(s.dtype).view(shape)
        out.append(s * k if start is None else s * k + start[j].to(s.dtype) * (1 - k))
    return tuple(out)


class Unrolled:
    """The per-step machinery shared by every core (a mixin for nn.Module subclasses).

    A core sets `kind`, `num_layers`, `hidden_size` and `dropout` (between layers)
    and defines `layer_params`, `project` and `recur`."""

    kind: registry.Kind
    num_layers: int
    hidden_size: int
    dropout: float
    training: bool

    # ------------------------------------------------------------ the kind's part

    def layer_params(self, k: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def project(self, x: Tensor, p: tuple[Any, ...]) -> Tensor:
        raise NotImplementedError

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Any, ...]) -> tuple[LayerState, Signals]:
        raise NotImplementedError

    # ------------------------------------------------------------------ state

    @property
    def out_size(self) -> int:
        """The width of the top layer's output, which the model's head reads."""
        return self.hidden_size

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """One layer's state tensors without the batch: (H,) each unless a kind says otherwise."""
        return tuple((self.hidden_size,) for _ in self.kind.state)

    def init_state(self, batch_size: int, device: Any, dtype: torch.dtype) -> State:
        L = self.num_layers
        return tuple(torch.zeros((L, batch_size, *shape), device=device, dtype=dtype) for shape in self.state_shapes())

    def split_state(self, state: State) -> list[LayerState]:
        return [tuple(s[k] for s in state) for k in range(self.num_layers)]

    @staticmethod
    def join_state(layers: list[LayerState]) -> State:
        return tuple(torch.stack([ls[j] for ls in layers]) for j in range(len(layers[0])))

    def _between(self, x: Tensor, k: int) -> Tensor:
        """Dropout between layers (not after the top one), in training only, as the fused modules do."""
        if self.training and self.dropout > 0 and k < self.num_layers - 1:
            return F.dropout(x, self.dropout, True)
        return x

    # ------------------------------------------------------------ the three paths

    def unrolled(self, x: Tensor, state: State, reset: Tensor | None = None, h0: State | None = None) -> tuple[Tensor, State]:
        """x (B, T, I) -> the top layer's outputs (B, T, H) and the final state.

        `reset` (B, T) bool restarts a row's state just before it reads step t: from
        zeros, or from h0 (each (L, B, T, ...)) at that step where h0 is given."""
        B, T, _ = x.shape
        at: set[int] = set()
        keep = None
        if reset is not None:
            cols = reset.any(0)  # (T,)
            if bool(cols.any()):
                at = set(cols.nonzero().flatten().tolist())
                keep = ~reset  # (B, T)
        finals = []
        for k, s in enumerate(self.split_state(state)):
            p = self.layer_params(k)
            xp = self.project(x, p)  # (B, T, G): every timestep's input projection in one matrix product
            outs = []
            for t, xp_t in enumerate(xp.unbind(1)):
                if t in at:
                    s = keep_rows(s, keep[:, t], 0, None if h0 is None else tuple(h[k, :, t] for h in h0))  # type: ignore[index]
                s, _ = self.recur(xp_t, s, p)
                outs.append(s[0])
            finals.append(s)
            x = self._between(torch.stack(outs, 1), k)  # (B, T, H)
        if h0 is not None and not at:  # no document starts here: h0 still joins the graph, as DDP wants of every parameter
            x = x + 0.0 * sum(h.sum() for h in h0)
        return x, self.join_state(finals)

    def step(self, x: Tensor, layers: list[LayerState]) -> tuple[Tensor, list[LayerState]]:
        """One timestep through every layer: x (B, I) -> the top output (B, H), new per-layer states.
        Inference only (no dropout)."""
        new = []
        for k, s in enumerate(layers):
            p = self.layer_params(k)
            s, _ = self.recur(self.project(x, p), s, p)
            new.append(s)
            x = s[0]
        return x, new

    def trace(self, x: Tensor, state: State) -> CoreTrace:
        """Unroll over x (B, T, I) keeping every signal: signals[name] is (L, B, T, ...).
        Runs under autograd, so gradients through time can be taken from `steps`; in
        training mode, dropout falls between layers where the fused modules put it."""
        names = self.kind.signal_names
        steps: dict[str, list[list[Tensor]]] = {n: [] for n in names}
        finals = []
        for k, s in enumerate(self.split_state(state)):
            p = self.layer_params(k)
            xp = self.project(x, p)  # (B, T, G)
            rec: dict[str, list[Tensor]] = {n: [] for n in names}
            for xp_t in xp.unbind(1):
                s, sig = self.recur(xp_t, s, p)
                for n in names:
                    rec[n].append(sig[n])
            for n in names:
                steps[n].append(rec[n])
            finals.append(s)
            x = self._between(torch.stack(rec[names[0]], 1), k)  # (B, T, H): the layer's h
        signals = {n: torch.stack([torch.stack(per_t, 1) for per_t in steps[n]]) for n in names}
        return CoreTrace(x, self.join_state(finals), signals, steps)


class Recurrent(Unrolled, nn.Module):
    """Base class of kinds with no fused PyTorch module: they train on `unrolled()`."""

    def __init__(self, cfg: ModelConfig, input_size: int):
        nn.Module.__init__(self)
        self.kind = registry.get(cfg.cell)
        self.num_layers, self.hidden_size = cfg.layers, cfg.hidden
        self.dropout = cfg.dropout if cfg.layers > 1 else 0.0
        self.input_size = input_size

    def forward(self, x: Tensor, state: State, reset: Tensor | None = None, h0: State | None = None) -> tuple[Tensor, State]:
        return self.unrolled(x, state, reset, h0)


class FusedCore(Unrolled):
    """A mixin placed before nn.RNN / nn.LSTM / nn.GRU: forward() runs the fused module.

    With document starts inside a batch, each row is cut where a document starts
    and the pieces run as one packed batch, the first piece of a row from the
    carried state and every other piece from zeros (or from h0 at its start, where
    given). `use_fused = False` switches training to the generic unrolled path
    (parity tests and the benchmark use it)."""

    use_fused = True

    def _init_kind(self, cfg: ModelConfig) -> None:
        self.kind = registry.get(cfg.cell)

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """U (weight_ih), W (weight_hh), b_ih, b_hh of layer k, as PyTorch names and lays them out."""
        return tuple(getattr(self, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))  # type: ignore[return-value]

    def _to_module(self, state: State) -> Any:
        return state if len(state) > 1 else state[0]

    def _from_module(self, s: Any) -> State:
        return tuple(s) if isinstance(s, tuple) else (s,)

    def _fused(self, x: Any, hx: Any) -> tuple[Any, Any]:
        return super(FusedCore, self).forward(x, hx)  # type: ignore[misc]  # the nn.RNNBase subclass's own forward

    def forward(self, x: Tensor, state: State, reset: Tensor | None = None, h0: State | None = None) -> tuple[Tensor, State]:
        if not self.use_fused:
            return self.unrolled(x, state, reset, h0)
        if reset is not None and bool(reset[:, 1:].any()):
            return self._segments(x, state, reset, h0)
        if reset is not None:
            state = keep_rows(state, ~reset[:, 0], 1, None if h0 is None else tuple(h[:, :, 0] for h in h0))
        out, s = self._fused(x, self._to_module(state))  # (B, T, H)
        return out, self._from_module(s)

    def _segments(self, x: Tensor, state: State, reset: Tensor, h0: State | None = None) -> tuple[Tensor, State]:
        B, T, _ = x.shape
        starts = reset.clone()
        starts[:, 0] = True  # every row starts a segment at t = 0
        flat = starts.reshape(-1)
        seg = torch.cumsum(flat.long(), 0) - 1  # (B*T,) segment of each position
        S = int(seg[-1]) + 1
        t = torch.arange(T, device=x.device).repeat(B)
        seg_start = torch.cummax(torch.where(flat, t, torch.zeros_like(t)).view(B, T), dim=1).values.reshape(-1)
        pos = t - seg_start  # position inside its segment
        lengths = torch.bincount(seg, minlength=S)
        padded = x.new_zeros(S, int(lengths.max()), x.shape[2])
        padded[seg, pos] = x.reshape(B * T, -1)
        first = seg.view(B, T)[:, 0]  # (B,) the first segment of each row
        last = seg.view(B, T)[:, -1]  # (B,) the last segment of each row
        carried = keep_rows(state, ~reset[:, 0], 1, None if h0 is None else tuple(h[:, :, 0] for h in h0))
        inner = reset.clone()
        inner[:, 0] = False  # the segments that start inside a row, at a reset
        init = []
        for j, s in enumerate(carried):  # (L, B, H) -> (L, S, H): the carried state into each row's first segment
            z = s.new_zeros(s.shape[0], S, *s.shape[2:])
            z[:, first] = s
            if h0 is not None:
                z[:, seg.view(B, T)[inner]] = h0[j][:, inner].to(z.dtype)  # (L, N, H): h(0) where a document starts
            init.append(z)
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, s_n = self._fused(packed, self._to_module(tuple(init)))
        out, _ = pad_packed_sequence(out, batch_first=True)  # (S, Lmax, H)
        out = out[seg, pos].view(B, T, -1)
        return out, tuple(s[:, last] for s in self._from_module(s_n))
