"""Documents inside a batch: the state zeroed where a row starts one, on the cheapest exact path.

A row of a training batch is a stream through the corpus; where it reads the
first token of a document (the end-of-document token before it doubles as the
start symbol), its state must be zero, as when sampling starts a document. A
fused module (cuDNN, oneDNN) runs a whole window from one initial state, so a
window with document starts inside it needs another plan. Three exact ones,
held equal to stepping with the state zeroed by tests/test_documents.py:

- spans: cut the window at the timesteps where some row starts a document, zero
  those rows' state there and run the fused module on each span. Each extra
  call costs about 7 ms (forward and backward, 2x256 LSTM) on a 2-core CPU, so
  this pays while such timesteps are few.
- steps: one layer at a time, each step's state times keep(t), with the
  backward pass written out (scan.py): no per-call cost, and about 0.9x the
  fused module's speed per layer on a CPU in fp32.
- packed: every row cut into its documents and the pieces run as one packed
  batch, the first piece of a row from the carried state, the others from
  zeros. cuDNN runs packed sequences natively; on a CPU they take PyTorch's
  slower loop (0.45x), so it is the CUDA path for many document starts.

`choose()` picks per batch from the count of such timesteps: the thresholds
are the crossing points measured with bench/doc_throughput.py (RESULTS.md),
and the choice depends on nothing else, so the same seed still gives the same
run. `PATH` forces one path everywhere (the benchmark and the tests set it).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = tuple[Tensor, ...]  # each (L, B, ...), or one layer's (B, ...)

PATHS = ("spans", "steps", "packed")
PATH: str | None = None  # None: choose per batch; else one of PATHS

# Most timesteps with a document start (after the first) for which cutting the window
# into spans is cheaper than the alternative, by device and by whether gradients are
# taken: measured on a 2-core CPU (bench/RESULTS.md); for CUDA, a cuDNN call costs tens
# of microseconds where oneDNN's costs milliseconds.
# Under bf16 autocast a CPU with AMX runs the fused module in bf16 while the scan stays
# in fp32, so spans pay for longer there.
SPANS_UP_TO = {("cpu", True): 3, ("cpu", False): 6, ("cpu-bf16", True): 6, ("cpu-bf16", False): 8, ("cuda", True): 8, ("cuda", False): 8}


def choose(reset: Tensor, device: torch.device, grad: bool) -> tuple[str, list[int]]:
    """The path for this batch, and the timesteps (> 0) where some row starts a document."""
    cols = reset[:, 1:].any(0).nonzero().flatten().add_(1).tolist()
    if PATH is not None:
        return PATH, cols
    kind = "cuda" if device.type == "cuda" else "cpu"
    if kind == "cpu" and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
        kind = "cpu-bf16"
    if len(cols) <= SPANS_UP_TO[(kind, grad)]:
        return "spans", cols
    return ("packed" if kind == "cuda" else "steps"), cols


def forward(core: Any, x: Tensor, state: State, reset: Tensor, h0: State | None = None) -> tuple[Tensor, State]:
    """x (B, T, I), state (L, B, H) each, reset (B, T) bool with a start after t = 0 -> out (B, T, H), final state.
    A row restarts from zeros where its document starts, or from h0 (each (L, B, T, H)) where given."""
    path, cols = choose(reset, x.device, torch.is_grad_enabled())
    if path == "spans":
        return spans(core, x, state, reset, cols, h0)
    if path == "steps" and h0 is None:  # the hand-written scan restarts from zeros only
        return steps(core, x, state, reset)
    return packed(core, x, state, reset, h0)


def keep_rows(state: State, keep: Tensor, dim: int, start: State | None = None) -> State:
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


def restart(state: State, reset: Tensor, t: int, h0: State | None) -> State:
    """The rows (dimension 1) that start a document at step t, from zeros or from h0 there."""
    return keep_rows(state, ~reset[:, t], 1, None if h0 is None else tuple(h[:, :, t] for h in h0))


def spans(core: Any, x: Tensor, state: State, reset: Tensor, cols: list[int], h0: State | None = None) -> tuple[Tensor, State]:
    bounds = [0, *cols, x.shape[1]]
    outs = []
    for a, b in zip(bounds, bounds[1:]):
        state = restart(state, reset, a, h0)
        out, state = core.whole(x[:, a:b], state)  # (B, b - a, H)
        outs.append(out)
    return torch.cat(outs, 1), state


def _no_autocast(device: torch.device) -> Any:
    if torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def product_dtype(core: Any, device: torch.device) -> torch.dtype | None:
    """bf16 where the fused module runs in bf16 (bf16 autocast, and on a CPU one whose oneDNN
    has the bf16 kernel): the scan's matrix products then run in it as the fused module's
    do, its elementwise work staying in the parameters' dtype. None: every product in that dtype."""
    if not torch.is_autocast_enabled(device.type) or torch.get_autocast_dtype(device.type) != torch.bfloat16:
        return None
    if core.weight_hh_l0.dtype != torch.float32 or (device.type == "cpu" and not core._cpu_half):
        return None
    return torch.bfloat16


def steps(core: Any, x: Tensor, state: tuple[Tensor, ...], reset: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Layer by layer through the kind's hand-written scan, time-major, in the parameters' dtype
    (its matrix products in bf16 where the fused module's are: product_dtype)."""
    dtype = core.weight_hh_l0.dtype
    mm = product_dtype(core, x.device)
    with _no_autocast(x.device):
        x = x.to(dtype).transpose(0, 1)  # (T, B, I)
        keep = (~reset).t().unsqueeze(2).to(dtype)  # (T, B, 1)
        cols = frozenset(reset.any(0).nonzero().flatten().tolist())
        finals = []
        for k, s in enumerate(core.split_state(state)):
            p = core.layer_params(k)
            with torch.autocast(x.device.type, dtype=mm, enabled=mm is not None):  # the input's share, one matrix product
                xp = core.project(x, p).to(dtype).contiguous()  # (T, B, G)
            out, s = core.scan_layer(xp, tuple(t.to(dtype) for t in s), p, keep, cols, mm)  # (T, B, H)
            finals.append(s)
            x = core._between(out, k)
        return x.transpose(0, 1), core.join_state(finals)


def packed(core: Any, x: Tensor, state: State, reset: Tensor, h0: State | None = None) -> tuple[Tensor, State]:
    B, T, _ = x.shape
    starts = reset.clone()
    starts[:, 0] = True  # every row starts a piece at t = 0
    flat = starts.reshape(-1)
    seg = torch.cumsum(flat.long(), 0) - 1  # (B*T,) the piece of each position
    S = int(seg[-1]) + 1
    t = torch.arange(T, device=x.device).repeat(B)
    seg_start = torch.cummax(torch.where(flat, t, torch.zeros_like(t)).view(B, T), dim=1).values.reshape(-1)
    pos = t - seg_start  # position inside its piece
    lengths = torch.bincount(seg, minlength=S)
    padded = x.new_zeros(S, int(lengths.max()), x.shape[2])
    padded[seg, pos] = x.reshape(B * T, -1)
    first = seg.view(B, T)[:, 0]  # (B,) the first piece of each row
    last = seg.view(B, T)[:, -1]  # (B,) the last piece of each row
    inner = reset.clone()
    inner[:, 0] = False  # the pieces that start inside a row, at a document start
    init = []
    for j, s in enumerate(restart(state, reset, 0, h0)):  # (L, B, H) -> (L, S, H): the carried state into each row's first piece
        z = x.new_zeros(s.shape[0], S, *s.shape[2:])  # in the input's dtype, as every fused call gets it
        z[:, first] = s.to(z.dtype)
        if h0 is not None:
            z[:, seg.view(B, T)[inner]] = h0[j][:, inner].to(z.dtype)  # (L, N, H): h(0) where a document starts
        init.append(z)
    seqs = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, s_n = core.fused(seqs, tuple(init))
    out, _ = pad_packed_sequence(out, batch_first=True)  # (S, Lmax, H)
    out = out[seg, pos].view(B, T, -1)
    return out, tuple(s[:, last] for s in s_n)
