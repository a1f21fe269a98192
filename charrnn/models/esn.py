"""An echo state network (section 10.8): a fixed random reservoir, and a readout that learns.

    h(t) = (1 - a) h(t-1) + a tanh(b + W h(t-1) + U x(t))      a: the leak rate (--leak, 1 = none), per unit
    o(t) = c + V h(t)                                          (the model's head: the readout)

W, U, b and the input embedding are drawn once and frozen (parameters that do
not require grad: the optimizer leaves them out, checkpoints list them as
frozen). Only the readout V, c learns. `--hidden` is the number of reservoir
units (the chapter's and the literature's "units"; one option for every kind).

- W is sparse: each weight is non-zero with probability --density, uniform in
  (-1, 1), then the matrix is scaled so that its spectral radius (largest
  |eigenvalue|, measured with an eigendecomposition) is --spectral-radius.
  Just under 1 by default: barely contractive, so the reservoir keeps an echo
  of its inputs for long without blowing up (the echo state property).
- U is uniform in (-s, s) / sqrt(fan-in) with s = --input-scaling, b uniform in
  (-0.2 s, 0.2 s).
- The leak: `--leak 1,0.05` splits the units evenly into two populations, fast
  units (a = 1) that see the present and slow ones (a = 0.05, a time constant of
  20 steps) that integrate what came before. A slow unit keeps
  a letter seen 50 steps back along one direction (it decays, it does not rotate),
  so a linear readout can tell which letters were seen, whatever the gap; with
  every unit fast the echo rotates through W and the readout cannot. On
  longrange-copy (gap 48, 1,000 units, closed-form readout alone, one seed) the
  leak 1 reservoir scored 0.434 bits/char, no better than no memory (0.433), the
  two populations 0.389 (bench/RESULTS.md, "Issue 23, third session"). Jaeger's
  memory capacity for white noise goes *down* (16.8 -> 10.8 units): a slow unit
  averages i.i.d. inputs it cannot tell apart, while a sparse input (a few letters
  among dots) survives averaging. It is not the default: on prose (tinyshakespeare,
  2x256, 1,000 steps) it scored 4.18 bits/char against 3.46 with every unit fast.
- On a CPU, a large, sparse reservoir steps with a sparse (CSR) matrix product
  when nothing needs its gradient: measured with batch 32 (2 cores), 2,000 units
  at density 0.1 step 3.4x faster than with the dense product, 512 units 1.3x;
  at 256 units or density 0.3 the dense product is as fast or faster.

The readout is fitted in closed form before any gradient step (--readout
ridge, the default: readout.py, one streaming pass of ridge regression and a
calibrated temperature), then refined by gradient as a softmax readout for
the rest of the budget; --readout gradient trains it by gradient alone.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .core import LayerState, Recurrent, Signals
from .options import ESNOptions

SPARSE_MIN_UNITS, SPARSE_MAX_DENSITY = 512, 0.15  # where the CSR product wins (see above)
MC_MAX_DELAY = 400  # delays k the memory capacity sums over (a tanh reservoir's MC_k is ~0 long before)
MC_STREAMS = 16


def spectral_radius(W: Tensor) -> float:
    """max |eigenvalue| of a square matrix, computed in float64."""
    if W.numel() == 0:
        return 0.0
    return float(torch.linalg.eigvals(W.detach().double().cpu()).abs().max())


def reservoir(H: int, density: float, radius: float) -> Tensor:
    """(H, H) sparse uniform weights scaled to the given spectral radius."""
    W = torch.empty(H, H).uniform_(-1.0, 1.0) * (torch.rand(H, H) < density)
    if W.is_meta:  # sizing a model without building it (compare.py): no values to scale
        return W
    rho = spectral_radius(W)
    return W * (radius / rho) if rho > 0 else W


def leak_rates(H: int, rates: tuple[float, ...]) -> Tensor:
    """(H,) the leak rate of every unit: the units split into len(rates) contiguous, near-equal blocks."""
    return torch.tensor(rates, dtype=torch.float64)[torch.arange(H) * len(rates) // max(H, 1)]


class ExactReadout(nn.Linear):
    """The readout in fp32 whatever the autocast: a closed-form readout's weights are large and
    cancel (Σ⁻¹ μ over slow, nearly collinear units), and with bf16 (8 bits of mantissa) the
    logits of an LDA readout that scores 0.390 bits/char on longrange-copy in fp32 (1,000 units,
    --leak 1,0.05) scored 13.7."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            return torch.nn.functional.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class ESNCore(Recurrent):
    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        self.options: ESNOptions = cfg.cell_options()
        o, H, L = self.options, cfg.hidden, cfg.layers
        U, W, b = [], [], []
        for k in range(L):
            fan_in = input_size if k == 0 else H
            U.append(torch.empty(H, fan_in).uniform_(-1.0, 1.0) * (o.input_scaling / math.sqrt(fan_in)))
            W.append(reservoir(H, o.density, o.spectral_radius))
            b.append(torch.empty(H).uniform_(-0.2, 0.2) * o.input_scaling)
        frozen = lambda ts: nn.ParameterList(nn.Parameter(t, requires_grad=False) for t in ts)  # noqa: E731
        self.U, self.W, self.b = frozen(U), frozen(W), frozen(b)
        self._csr: dict[int, tuple[tuple, Tensor]] = {}
        self.register_buffer("leak", leak_rates(H, o.leak), persistent=False)  # (H,): from the options, not saved
        self.memory_capacity = math.nan  # Jaeger's short-term memory capacity, once measured

    @torch.no_grad()
    def measure_memory(self, samples: int | None = None, seed: int = 0) -> float:
        """Jaeger's memory capacity of this reservoir (readout.memory_capacity), also kept as
        `self.memory_capacity`: the input is a scalar u(t) along one random direction of the
        embedding, at the embedding's own scale (entries N(0, 1)), through U, W, b and the leak
        to the top layer's h, which is all the readout sees. Deterministic (the seed), so a
        checkpoint's reservoir gives the figure its training run logged."""
        from .readout import memory_capacity

        H, W = self.hidden_size, self.W[0]
        z = torch.randn(self.input_size, generator=torch.Generator().manual_seed(seed)).to(W.device, W.dtype)  # (I,)

        def step(layers: list[LayerState], u: Tensor) -> tuple[list[LayerState], Tensor]:
            top, layers = self.step(u.to(W.device, W.dtype)[:, None] * z, layers)  # (B, I) -> (B, H)
            return layers, top

        start = [(torch.zeros(MC_STREAMS, H, device=W.device, dtype=W.dtype),) for _ in range(self.num_layers)]
        mc, _ = memory_capacity(step, start, MC_STREAMS, min(2 * H, MC_MAX_DELAY), samples or max(4 * H, 2000), seed=seed)
        self.memory_capacity = mc
        return mc

    def attach(self, model: nn.Module) -> None:
        model.embed.weight.requires_grad_(False)  # the input is part of the fixed reservoir: only the readout learns
        if type(model.head) is nn.Linear:
            model.head.__class__ = ExactReadout  # the same weights and keys, scored in fp32

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor, int]:
        return self.U[k], self.W[k], self.b[k], k

    def forward(self, x: Tensor, state: Any, reset: Tensor | None = None, h0: Any = None) -> tuple[Tensor, Any]:
        """The reservoir in fp32 whatever the autocast, so that the readout reads the states its
        closed form was fitted on (the fit runs outside autocast). bf16 states cost little in
        themselves (longrange-copy, 1,000 units, --leak 1,0.05, LDA: 0.390 against 0.389
        bits/char); nothing in the reservoir trains, and on a CPU the sparse product it then
        takes is the faster one."""
        wide = lambda t: t.float() if t.dtype in (torch.float16, torch.bfloat16) else t  # noqa: E731  (fp64 stays fp64)
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(wide(x), tuple(wide(s) for s in state), reset, h0)

    def project(self, x: Tensor, p: tuple[Any, ...]) -> Tensor:
        return torch.nn.functional.linear(x, p[0], p[2])  # (..., H)  U x + b

    def recur(self, xp: Tensor, state: LayerState, p: tuple[Any, ...]) -> tuple[LayerState, Signals]:
        (h,) = state
        a = xp + self._recurrent(h, p[1], p[3])  # (B, H)  b + W h + U x
        h = h + self.leak.to(h.dtype) * (torch.tanh(a) - h)  # (1 - a) h + a tanh(.), a per unit
        return (h,), {"h": h, "a": a}

    def _recurrent(self, h: Tensor, W: Tensor, k: int) -> Tensor:
        """W h for a batch h (B, H): a sparse product where it is faster and no gradient is wanted."""
        sparse = (
            h.device.type == "cpu" and self.hidden_size >= SPARSE_MIN_UNITS and self.options.density <= SPARSE_MAX_DENSITY
            and h.dtype == W.dtype and not (torch.is_grad_enabled() and h.requires_grad) and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing()  # a traced step (charrnn export) keeps the dense product every runtime has
        )  # fmt: skip
        if not sparse:
            return h @ W.t()
        key = (W._version, W.data_ptr(), W.dtype)  # a load_state_dict or a .double() makes a new copy
        cached = self._csr.get(k)
        if cached is None or cached[0] != key:
            with warnings.catch_warnings():  # "sparse CSR support is in beta": it is exact here, tested against dense
                warnings.simplefilter("ignore")
                cached = (key, W.detach().to_sparse_csr())
            self._csr[k] = cached
        return (cached[1] @ h.t()).t()

    def warm_start(self, model: nn.Module, batches: Any, reduce: Any, should_stop: Any) -> str | None:
        t = time.monotonic()
        mc = self.measure_memory()
        leak = ",".join(f"{a:g}" for a in self.options.leak)
        line = (f"reservoir: spectral radius {self.options.spectral_radius:g}, leak {leak}, memory capacity {mc:.1f} "
                f"of {self.hidden_size:,} units (Jaeger's MC: how many past inputs a linear readout recovers; {time.monotonic() - t:.0f} s)")  # fmt: skip
        if self.options.readout == "gradient":
            return line
        from .readout import fit_closed

        return fit_closed(model, batches, self.options.ridge, reduce, should_stop, self.options.readout) + "; " + line

    @classmethod
    def memory_of(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> float:
        """The memory capacity of a checkpoint's reservoir (its weights put into a core built on
        the meta device: nothing drawn, no eigendecomposition)."""
        mine = {k.removeprefix("core."): v for k, v in weights.items() if k.startswith("core.")}
        with torch.device("meta"):
            core = cls(cfg, mine["U.0"].shape[1])
        core.load_state_dict(mine, assign=True)
        core.leak = leak_rates(cfg.hidden, core.options.leak).to(mine["W.0"].device)  # not in the weights: from the options
        return core.measure_memory()

    @classmethod
    def describe(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Any]:
        o: ESNOptions = cfg.cell_options()
        facts: dict[str, Any] = {}
        frozen = 0
        for k in range(cfg.layers):
            W = weights.get(f"core.W.{k}")
            if W is None:
                continue
            frozen += sum(weights[f"core.{n}.{k}"].numel() for n in ("U", "W", "b"))
            nonzero = float((W != 0).float().mean())
            facts[f"spectral radius, layer {k}"] = round(spectral_radius(W), 4)
            facts[f"density, layer {k}"] = round(nonzero, 4)
        if all(f"core.{n}.{k}" in weights for n in ("U", "W", "b") for k in range(cfg.layers)):
            mc = cls.memory_of(weights, cfg)
            facts["memory capacity"] = (f"{mc:.1f} of {cfg.hidden:,} units (Jaeger's short-term memory: the past inputs "
                                        f"a linear readout of h(t) recovers, at most the number of units)")  # fmt: skip
        facts["reservoir"] = (
            f"frozen: {frozen:,} reservoir weights and the embedding; only the readout learns "
            f"(--spectral-radius {o.spectral_radius}, --leak {','.join(f'{a:g}' for a in o.leak)}, --input-scaling {o.input_scaling}, --readout {o.readout})"
        )
        return facts
