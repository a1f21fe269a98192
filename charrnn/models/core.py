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
  at 0.97x the speed of the fused nn.RNN (bench/generic_core.py: the median of five
  alternating runs, 0.92-1.06x run by run; bench/RESULTS.md).
- `step()`: one timestep of every layer, the sampler's hot path.
- `trace()`: the whole text with every signal kept, under autograd, for the
  inspector and the TUI.

`FusedCore` is for kinds that are also a fused PyTorch module (nn.RNN, nn.LSTM,
nn.GRU subclass it): `forward()` runs cuDNN / oneDNN, the other paths read the
same parameters, so there is one set of weights and the state_dict keys stay
PyTorch's own (`core.weight_ih_l0`, ...).

A state is a tuple of tensors, one per name in the kind's `state`, each
(L, B, ...): the batch is always dimension 1. One layer's share is (B, ...).
A kind whose state tensors are not (H,) per row says so in `state_shapes()`
(a leaky unit with skip connections carries its last few h).

A few optional hooks let a kind reach past its own layer, each a no-op here:
`attach(model)` once the model around the core exists (an echo state network
freezes the embedding; a Jordan net keeps a handle on the head it feeds back),
`reads_ids` (the core is also handed the token ids: a Jordan net's teacher
forcing feeds back the known previous output), `unit_info()` (per-unit
constants the inspector and the TUI show, such as a leaky unit's time constant),
`warm_start()` (fit part of the model before gradient training, once, on a
fresh run: an echo state network's ridge readout) and `describe()` (facts about
a checkpoint's weights for `charrnn info`, such as a reservoir's spectral radius).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..config import ModelConfig
from . import documents, registry
from .documents import keep_rows

State = tuple[Tensor, ...]  # each (L, B, ...)
LayerState = tuple[Tensor, ...]  # each (B, ...)
Signals = dict[str, Tensor]


@dataclass(frozen=True)
class CoreTrace:
    out: Tensor  # (B, T, H) the top layer's output
    state: State  # after the last step
    signals: dict[str, Tensor]  # name -> (L, B, T, ...)
    steps: dict[str, list[list[Tensor]]]  # name -> [layer][t] -> (B, ...): the graph's own tensors, for autograd.grad


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

    # ------------------------------------------------------------- optional hooks

    reads_ids = False  # forward / step / trace are also given the token ids (ids=), (B, T) or (B,)

    def attach(self, model: nn.Module) -> None:
        """Called once by the model holding this core, after its embedding and head exist."""

    def unit_info(self) -> dict[str, Tensor]:
        """Per-unit constants worth showing beside the signals: name -> (L, H)."""
        return {}

    def warm_start(self, model: nn.Module, batches: Any, reduce: Any, should_stop: Any) -> str | None:
        """Fit part of the model before the first gradient step of a fresh run, from
        `batches` (x, y, reset) over the training split, summing across processes with
        `reduce(tensor)`, stopping early when `should_stop()`. Returns a line for the
        log, or None when the kind has nothing to fit."""
        return None

    @classmethod
    def describe(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Any]:
        """Facts about a checkpoint's weights for `charrnn info` (name -> a JSON-able value)."""
        return {}

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

    A window with document starts after its first step goes to documents.py,
    which picks the cheapest exact path for it (spans of the fused module, the
    kind's hand-written scan, or packed sequences). A document's start restarts its
    row from zeros, or from h0 (a conditioned model's h(0)) where given. `use_fused = False` switches
    training to the generic unrolled path (parity tests and the benchmark use it)."""

    use_fused = True
    _cpu_half = True  # False once oneDNN has said it has no half-precision kernel for this CPU

    def _init_kind(self, cfg: ModelConfig) -> None:
        self.kind = registry.get(cfg.cell)

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """U (weight_ih), W (weight_hh), b_ih, b_hh of layer k, as PyTorch names and lays them out."""
        return tuple(getattr(self, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))  # type: ignore[return-value]

    def scan_layer(self, xp: Tensor, state: LayerState, p: tuple[Any, ...], keep: Tensor, cols: frozenset[int],
                   mm: torch.dtype | None = None) -> tuple[Tensor, LayerState]:  # fmt: skip
        """One layer over xp (T, B, G), time-major, the state times keep (T, B, 1) at the steps in
        cols, backward by hand (scan.py), its matrix products in `mm` where given (bf16 where the
        fused module runs in bf16): -> out (T, B, H), the layer's last state."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State, reset: Tensor | None = None, h0: State | None = None) -> tuple[Tensor, State]:
        if not self.use_fused:
            return self.unrolled(x, state, reset, h0)
        if reset is not None and bool(reset[:, 1:].any()):
            return documents.forward(self, x, state, reset, h0)
        if reset is not None:
            state = documents.restart(state, reset, 0, h0)
        return self.whole(x, state)

    def whole(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The fused module over x (B, T, I) from `state`: -> out (B, T, H), final state."""
        return self.fused(x, state)

    def fused(self, x: Any, state: State) -> tuple[Any, State]:
        """One call of the nn.RNNBase subclass's own forward (x a tensor or a PackedSequence).

        The state goes in the input's dtype: under autocast the carried state is fp32
        while activations may be half, and each call must see one dtype (the CUDA
        crash of issue 16 was a mix). oneDNN has no half-precision LSTM kernel on a
        CPU without AVX-512 BF16 / AMX, so there the call falls back to fp32."""
        data = x.data if isinstance(x, PackedSequence) else x
        hx = tuple(s.to(data.dtype) for s in state)
        if data.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            if FusedCore._cpu_half:
                try:
                    return self._call(x, hx)
                except RuntimeError as e:
                    if "primitive" not in str(e):
                        raise
                    FusedCore._cpu_half = False
            with torch.autocast("cpu", enabled=False):
                return self._call(x.float(), tuple(h.float() for h in hx))
        return self._call(x, hx)

    def _call(self, x: Any, hx: State) -> tuple[Any, State]:
        out, s = super(FusedCore, self).forward(x, hx if len(hx) > 1 else hx[0])  # type: ignore[misc]
        return out, (tuple(s) if isinstance(s, tuple) else (s,))
