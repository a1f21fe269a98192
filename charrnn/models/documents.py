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
  backward pass written out (scan.py; the LSTM under bf16 on bf16 buffers,
  scan_bf16.py): no per-call cost, and about 0.9x the fused module's speed per
  layer on a CPU in fp32; under bf16, where the fused module uses AMX, a training
  step on it takes about 1.3x one with no document start (RECORDED).
- packed: every row cut into its documents and the pieces run as one packed
  batch, the first piece of a row from the carried state, the others from
  zeros. cuDNN runs packed sequences natively; on a CPU they take PyTorch's
  slower loop (0.45x), so it is the CUDA path for many document starts.

`choose()` picks per batch from the count of such timesteps, by device and
precision: the thresholds are the crossing points of a recorded
`bench/doc_throughput.py --costs` run (`RECORDED`, RESULTS.md), and the choice
depends on nothing else, so the same seed still gives the same run. `PATH` forces one path everywhere (the benchmark and the tests set it).
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

# What each path costs, by the number of timesteps (after the first) where some row starts a
# document: (spans, steps) in ms of CPU time, medians of 5, as recorded by
#     python bench/doc_throughput.py --shapes '' --costs --precision {fp32,bf16} --threads 1 --repeats 5 --clock cpu
# (issue 25, bench/RESULTS.md; a 2-core AMX Xeon shared with other work: one training step of a
# 2x256 LSTM, batch 32 x 32, and one evaluation forward). Re-recorded by pasting what that prints;
# the bf16 rows since the LSTM scan runs on bf16 buffers (scan_bf16.py, 2026-12-08).
RECORDED: dict[tuple[str, str, bool], dict[int, tuple[float, float]]] = {
    ("cpu", "fp32", True): {1: (74.4, 86.7), 2: (78.6, 84.2), 3: (77.1, 81.8), 4: (82.0, 81.7), 5: (84.7, 82.2), 6: (91.4, 84.0), 8: (101.5, 82.4), 12: (113.0, 86.8), 31: (212.1, 84.1)},
    ("cpu", "fp32", False): {1: (20.5, 29.5), 2: (21.6, 29.5), 3: (23.0, 29.1), 4: (24.5, 30.9), 5: (25.1, 29.8), 6: (26.5, 28.1), 8: (29.6, 29.6), 12: (32.3, 30.7), 31: (51.0, 30.0)},
    ("cpu", "bf16", True): {1: (39.5, 47.2), 2: (41.9, 45.4), 3: (46.6, 45.5), 4: (47.5, 45.2), 5: (49.9, 44.3), 6: (55.6, 45.5), 8: (63.1, 45.9), 12: (79.8, 47.1), 31: (156.5, 46.9)},
    ("cpu", "bf16", False): {1: (9.4, 19.7), 2: (10.3, 19.0), 3: (10.9, 18.9), 4: (12.5, 19.3), 5: (13.2, 19.3), 6: (14.0, 19.9), 8: (15.9, 20.3), 12: (19.9, 20.7), 31: (34.0, 20.3)},
}  # fmt: skip


def crossing(costs: dict[int, tuple[float, float]]) -> int:
    """The most timesteps with a start for which spans cost no more than the alternative: the
    last recorded count before the first where they cost more."""
    up_to = 0
    for k in sorted(costs):
        if costs[k][0] > costs[k][1]:
            break
        up_to = k
    return up_to


# Most timesteps with a start for which cutting the window into spans is the cheaper plan, by
# device, precision and whether gradients are taken: the recorded crossing points. CUDA is not
# recorded (no GPU has been lent to measure it): a cuDNN call costs tens of microseconds where
# oneDNN's costs milliseconds, so spans pay far longer there; 8 is a guess, and packed
# sequences (cuDNN's own) take the rest.
SPANS_UP_TO = {key: crossing(costs) for key, costs in RECORDED.items()}
SPANS_UP_TO.update({("cuda", prec, grad): 8 for prec in ("fp32", "bf16") for grad in (True, False)})


def choose(reset: Tensor, device: torch.device, grad: bool) -> tuple[str, list[int]]:
    """The path for this batch, and the timesteps (> 0) where some row starts a document."""
    cols = reset[:, 1:].any(0).nonzero().flatten().add_(1).tolist()
    if PATH is not None:
        return PATH, cols
    kind = "cuda" if device.type == "cuda" else "cpu"
    half = torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) in (torch.bfloat16, torch.float16)
    if len(cols) <= SPANS_UP_TO[(kind, "bf16" if half else "fp32", grad)]:
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
    """bf16 under bf16 autocast, where the fused module runs in bf16: the scan's matrix
    products then run in it as the fused module's do, its elementwise work staying in the
    parameters' dtype (fp32). None: every product in the parameters' dtype."""
    if not torch.is_autocast_enabled(device.type) or torch.get_autocast_dtype(device.type) != torch.bfloat16:
        return None
    return torch.bfloat16 if core.weight_hh_l0.dtype == torch.float32 else None


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
                xp = core.project(x, p)  # (T, B, G), in bf16 where mm is: each scan takes it in the dtype it runs on
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
