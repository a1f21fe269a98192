"""A long text through a model in parallel streams, every signal of every layer, chunk by chunk.

The atlas reads hundreds of thousands of tokens. One stream a step at a time
would take minutes, so the text is cut into B streams read side by side (batch
B), each starting `warmup` tokens before its own part so that its state has
settled when its first scored token comes, the state carried from chunk to
chunk. Memory is one chunk's signals whatever the text's length.

Two ways to read a chunk, held equal by tests/test_atlas.py. The per-step path
(`model.trace`, batch B), every kind's own, is the default. For the kinds with a
fused PyTorch module (rnn, lstm, gru), `fused=True` runs the fused module layer by
layer, which gives h at every step, and works out every other signal from h(t-1)
and the input in one matrix product (the kind's own `recur` over B*T rows at once;
an LSTM's cell c by its elementwise recurrence c(t) = f c(t-1) + i g). It does the
recurrent product twice, and measured on a 2-core CPU (one thread, a 2x256 LSTM,
40,000 characters in 128 streams, reading alone) it costs 2.4-2.9 CPU seconds
against the per-step path's 1.7: the per-step loop at batch 128 is already
matrix-bound. It stays an option for devices where the fused kernel wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from .trace import evaluating

WARMUP = 100  # tokens each stream reads before its part: the state forgets where it started
STEPS = 32  # timesteps a chunk: B * STEPS rows of every signal in memory at once
MIN_STREAM = 1000  # tokens a stream reads at least, so that warm-up stays a small share


@dataclass(frozen=True)
class Chunk:
    pos: np.ndarray  # (n,) the positions in the text of the chunk's rows
    signals: dict[str, Tensor]  # name -> (n, L, H) float32


def layout(n_tokens: int, streams: int | None = None) -> tuple[int, int]:
    """(B, S): how many streams, and the tokens each one scores."""
    B = streams or max(1, min(128, n_tokens // MIN_STREAM))
    B = max(1, min(B, n_tokens))
    return B, -(-n_tokens // B)


def _fused_layers(core: nn.Module) -> list[nn.Module] | None:
    """One single-layer fused module per layer, holding the core's own parameters
    (no copy), or None for a kind without one."""
    base = next((c for c in (nn.LSTM, nn.GRU, nn.RNN) if isinstance(core, c)), None)
    if base is None or getattr(core, "proj_size", 0) or not getattr(core, "bias", True):
        return None
    mods = []
    for k in range(core.num_layers):
        U = getattr(core, f"weight_ih_l{k}")
        kw = {"nonlinearity": core.nonlinearity} if base is nn.RNN else {}
        m = base(U.shape[1], core.hidden_size, 1, batch_first=True, **kw).to(U.device)
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(m, f"{n}_l0", getattr(core, f"{n}_l{k}"))
        mods.append(m.eval())
    return mods


class Reader:
    """Runs chunks of B streams through a model, the state carried between calls."""

    def __init__(self, model: nn.Module, fused: bool = False):
        self.model = model
        self.core = model.core
        self.names = model.kind.signal_names
        self.layers = _fused_layers(self.core) if fused else None

    def start(self, B: int) -> tuple[Tensor, ...]:
        conditioned = hasattr(self.model, "start_state")
        return self.model.start_state(B, None) if conditioned else self.model.init_state(B)

    def __call__(self, idx: Tensor, state: tuple[Tensor, ...]) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
        """idx (B, T) -> signals name -> (L, B, T, H), the state after."""
        if self.layers is None or getattr(self.core, "reads_ids", False):
            tr = self.model.trace(idx, state)
            return {n: tr.signals[n].float() for n in self.names}, tuple(tr.state)
        x = self.model.inputs(idx)  # (B, T, I)
        per_layer: dict[str, list[Tensor]] = {n: [] for n in self.names}
        finals = []
        for k, (m, s) in enumerate(zip(self.layers, self.core.split_state(state))):
            hx = tuple(t[None] for t in s)  # (1, B, H) each: a one-layer module's state
            out, new = m(x, hx if len(hx) > 1 else hx[0])  # (B, T, H): h at every step, by the fused kernel
            new = tuple(t[0] for t in (new if isinstance(new, tuple) else (new,)))
            B, T, H = out.shape
            p = self.core.layer_params(k)
            h_prev = torch.cat([s[0][:, None], out[:, :-1]], 1)  # (B, T, H)
            xp = self.core.project(x, p).reshape(B * T, -1)  # (B*T, G)
            rest = tuple(torch.zeros_like(h_prev.reshape(B * T, H)) for _ in s[1:])  # an LSTM's c: not needed for the gates
            _, sig = self.core.recur(xp, (h_prev.reshape(B * T, H), *rest), p)  # every step's gates in one product
            sig = {n: v.reshape(B, T, H) for n, v in sig.items()}
            sig["h"] = out
            if "c" in sig:  # c(t) = f c(t-1) + i g, elementwise along time
                c, cs = s[1], []
                f, ig = sig["forget"], sig["input"] * sig["candidate"]
                for t in range(T):
                    c = torch.addcmul(ig[:, t], f[:, t], c)
                    cs.append(c)
                sig["c"] = torch.stack(cs, 1)
            for n in self.names:
                per_layer[n].append(sig[n])
            finals.append(new)
            x = out
        state = tuple(torch.stack([f[j] for f in finals]) for j in range(len(finals[0])))
        return {n: torch.stack(v) for n, v in per_layer.items()}, state


def chunks(model: nn.Module, ids: np.ndarray, streams: int | None = None, steps: int = STEPS, warmup: int = WARMUP,
           start_id: int | None = None, fused: bool = False) -> Iterator[Chunk]:  # fmt: skip
    """Every signal at every position of `ids` (N,), as chunks of B * steps rows.

    Stream b scores positions [b S, (b+1) S) and reads the `warmup` tokens before
    them first; stream 0 starts from the model's start state (after `start_id`, the
    start-of-document token, where the model has one), as the inspector reads a text."""
    N = len(ids)
    if N == 0:
        return
    B, S = layout(N, streams)
    W = warmup if B > 1 else 0
    dev = next(model.parameters()).device
    full = np.concatenate([np.full(W, ids[0]), np.asarray(ids, np.int64), np.full(B * S - N, ids[-1])])  # (W + B S,)
    rows = np.arange(B)[:, None] * S + np.arange(W + S)[None, :]  # (B, W + S) into `full`
    grid = torch.as_tensor(full[rows], device=dev)  # (B, W + S): stream b's warm-up, then its part
    if start_id is not None and W:
        grid[0, W - 1] = start_id
    reader = Reader(model, fused)
    with evaluating(model), torch.no_grad():
        state = reader.start(B)
        if W:  # warm up; stream 0 restarts (from the start state, and its start symbol) where its part begins
            cut = W - (start_id is not None)
            if cut:
                _, state = reader(grid[:, :cut], state)
            start = reader.start(B)
            state = tuple(torch.cat([a[:, :1], s[:, 1:]], 1) for a, s in zip(start, state))
            if start_id is not None:
                _, state = reader(grid[:, cut:W], state)
        elif start_id is not None:
            _, state = reader(torch.full((B, 1), start_id, device=dev), state)
        for j in range(0, S, steps):
            sig, state = reader(grid[:, W + j : W + j + steps], state)
            T = next(iter(sig.values())).shape[2]
            pos = (np.arange(B)[:, None] * S + j + np.arange(T)[None, :]).reshape(-1)  # (B*T,)
            keep = pos < N
            flat = {n: v.permute(1, 2, 0, 3).reshape(B * T, v.shape[0], -1) for n, v in sig.items()}  # (B*T, L, H)
            if not keep.all():
                k = torch.as_tensor(keep, device=dev)
                flat = {n: v[k] for n, v in flat.items()}
                pos = pos[keep]
            yield Chunk(pos, {n: v.float().cpu() for n, v in flat.items()})


def windows(model: nn.Module, ids: np.ndarray, spans: list[tuple[int, int]], context: int = WARMUP,
            start_id: int | None = None, fused: bool = False) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """Every signal over each span [a, b) of `ids`, read after up to `context` tokens before
    it (from the text's start with the start symbol when the span begins within
    `context`): name -> (b - a, L, H) per span. For excerpts and a selection."""
    out = []
    for a, b in spans:
        lo = max(0, a - context)
        idx = np.asarray(ids[lo:b], np.int64)
        if lo == 0 and start_id is not None:
            idx = np.concatenate([[start_id], idx])
        reader = Reader(model, fused)
        with evaluating(model), torch.no_grad():
            sig, _ = reader(torch.as_tensor(idx, device=next(model.parameters()).device)[None], reader.start(1))
        keep = b - a
        out.append({n: v[:, 0, -keep:].permute(1, 0, 2).float().cpu().numpy() for n, v in sig.items()})
    return out


def signal_shapes(model: Any) -> dict[str, int]:
    """name -> how many units the signal has over all layers (L * H)."""
    return {n: model.core.num_layers * model.core.hidden_size for n in model.kind.signal_names}
