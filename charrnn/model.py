"""CharRNN: embedding -> recurrent core -> linear head, with two forward paths.

One set of weights. `forward()` runs the fused `nn.LSTM` / `nn.GRU` / `nn.RNN`
(cuDNN on a GPU, oneDNN on a CPU) over a whole (B, T) batch: this is the path
training uses. `step()` and `trace()` unroll the pure cell functions of
`cells.py` one timestep and one layer at a time, reading the fused module's own
parameters on every call, so there is nothing to copy or keep in sync and the
`state_dict()` keys stay PyTorch's. Tests hold the two paths equal.

The state is always a tuple of (L, B, H) tensors: (h,) for rnn and gru, (h, c)
for lstm. The output layer is o(t) = c + V h(t) (eq. 10.10), softmax over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .cells import CELLS, CellSpec, Params
from .config import ModelConfig

State = tuple[Tensor, ...]  # (h,) or (h, c), each (L, B, H)
LayerStates = list[tuple[Tensor, ...]]  # the same split by layer: [(h, c) or (h,), each (B, H)]


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        self.spec: CellSpec = CELLS[cfg.cell]
        V, E, H, L = cfg.vocab_size, cfg.embed, cfg.hidden, cfg.layers
        self.embed = nn.Embedding(V, E)
        self.core = self.spec.module(E, H, L, batch_first=True, dropout=cfg.dropout if L > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, V)

    # PyTorch's own initialisation throughout: its logits start small enough that the
    # first loss is ln(V) to within 0.01. Measured on tinyshakespeare (bench/RESULTS.md),
    # a near-zero output layer (std 0.02) or a forget-gate bias of 1 both made the
    # first 500 steps slower (val 1.93 and 1.92 against 1.82 nats/char).

    # ------------------------------------------------------------------ state

    def init_state(self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        p = self.head.weight
        shape = (self.cfg.layers, batch_size, self.cfg.hidden)
        return tuple(torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype) for _ in self.spec.state_names)

    def layer_params(self, k: int) -> Params:
        c = self.core
        return (getattr(c, f"weight_ih_l{k}"), getattr(c, f"weight_hh_l{k}"), getattr(c, f"bias_ih_l{k}"), getattr(c, f"bias_hh_l{k}"))

    def _to_module(self, state: State):
        return state if self.cfg.cell == "lstm" else state[0]

    def _from_module(self, s) -> State:
        return tuple(s) if self.cfg.cell == "lstm" else (s,)

    # ---------------------------------------------------------------- forward

    def forward(
        self, idx: Tensor, state: State | None = None, targets: Tensor | None = None, reset: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, State]:
        """idx (B, T) token ids -> logits (B, T, V), mean cross-entropy if targets, final state.

        `reset` (B, T) bool marks the timesteps whose input starts a document: the
        state is zeroed just before that input is read (the end-of-document token
        doubles as the start symbol, so training sees what sampling sees).
        """
        B, T = idx.shape
        if state is None:
            state = self.init_state(B)
        x = self.embed(idx)  # (B, T, E)
        if reset is not None and bool(reset[:, 1:].any()):
            out, state = self._forward_segments(x, state, reset)
        else:
            if reset is not None:
                keep = (~reset[:, 0]).to(x.dtype).view(1, B, 1)
                state = tuple(s * keep for s in state)
            out, s = self.core(x, self._to_module(state))  # (B, T, H)
            state = self._from_module(s)
        logits = self.head(self.drop(out))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(B * T))
        return logits, loss, state

    def _forward_segments(self, x: Tensor, state: State, reset: Tensor) -> tuple[Tensor, State]:
        """The fused core over document segments: each row of the batch is cut where
        a document starts, the pieces run as one packed batch, the first piece of a
        row from the carried state and every other piece from zeros."""
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
        carry = (~reset[:, 0]).to(x.dtype).view(1, B, 1)
        init = []
        for s in state:  # (L, B, H) -> (L, S, H): carried state into each row's first segment
            z = s.new_zeros(s.shape[0], S, s.shape[2])
            z[:, first] = s * carry
            init.append(z)
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, s_n = self.core(packed, self._to_module(tuple(init)))
        out, _ = pad_packed_sequence(out, batch_first=True)  # (S, Lmax, H)
        out = out[seg, pos].view(B, T, -1)
        final = tuple(s[:, last] for s in self._from_module(s_n))
        return out, final

    # ---------------------------------------------------------- per-step path

    @torch.no_grad()
    def step(self, idx: Tensor, state: State) -> tuple[Tensor, State]:
        """One timestep with the cell functions: idx (B,) -> logits (B, V), new state.
        Inference only (no dropout)."""
        logits, layers = self.step_layers(idx, self.split_state(state))
        return logits, self.join_state(layers)

    @torch.no_grad()
    def step_layers(self, idx: Tensor, layers: LayerStates) -> tuple[Tensor, LayerStates]:
        """`step` on a per-layer state list [(h, c) or (h,), each (B, H)]: the sampler's
        hot path, which skips stacking the layers into (L, B, H) at every token."""
        x = self.embed(idx)  # (B, E)
        new = []
        for k, layer_state in enumerate(layers):
            layer_state, _ = self.spec.step(x, layer_state, self.layer_params(k))
            new.append(layer_state)
            x = layer_state[0]
        return self.head(x), new

    def split_state(self, state: State) -> LayerStates:
        return [tuple(s[k] for s in state) for k in range(self.cfg.layers)]

    @staticmethod
    def join_state(layers: LayerStates) -> State:
        return tuple(torch.stack([ls[j] for ls in layers]) for j in range(len(layers[0])))

    def trace(self, idx: Tensor, state: State | None = None) -> "Trace":
        """Unroll the per-step path over idx (B, T), keeping every internal signal:
        signals[name] is (L, B, T, H); logits (B, T, V). Runs under autograd so that
        gradients through time can be taken from it. In training mode, dropout falls
        where the fused module puts it (between layers) and before the head."""
        B, T = idx.shape
        L = self.cfg.layers
        if state is None:
            state = self.init_state(B)
        x_all = self.embed(idx)  # (B, T, E)
        per_layer_state = self.split_state(state)
        params = [self.layer_params(k) for k in range(L)]
        record: dict[str, list[list[Tensor]]] = {n: [[] for _ in range(L)] for n in self.spec.signals}
        between = self.training and L > 1 and self.core.dropout > 0
        tops = []
        for x in x_all.unbind(1):  # unbind, not x[:, t]: slicing makes backward far slower
            for k in range(L):
                per_layer_state[k], sig = self.spec.step(x, per_layer_state[k], params[k])
                for name in self.spec.signals:
                    record[name][k].append(sig[name])
                x = per_layer_state[k][0]
                if between and k < L - 1:
                    x = F.dropout(x, self.core.dropout, True)
            tops.append(x)
        out = torch.stack(tops, 1)  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        signals = {n: torch.stack([torch.stack(r, 1) for r in record[n]]) for n in self.spec.signals}
        final = self.join_state(per_layer_state)
        return Trace(logits=logits, signals=signals, state=final, steps=record)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass(frozen=True)
class Trace:
    logits: Tensor  # (B, T, V)
    signals: dict[str, Tensor]  # name -> (L, B, T, H)
    state: State
    steps: dict[str, list[list[Tensor]]]  # name -> [layer][t] -> (B, H): the graph's own tensors, for autograd.grad
