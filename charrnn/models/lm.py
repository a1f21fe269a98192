"""CharRNN: embedding -> recurrent core -> linear head, a language model of any kind.

    x(t) = E[idx(t)]                    the token's embedding
    h(t) = core(x(t), state(t-1))       any kind in the registry (rnn, lstm, gru, ...)
    o(t) = c + V h(t)                   (eq. 10.10), softmax over the vocabulary

One set of weights, several paths (core.py): `forward()` trains on the core's
fastest path (a fused cuDNN / oneDNN module where the kind has one, else the
generic unrolled core); `step()` and `trace()` unroll the kind's own step
function, reading the very same parameters, for sampling and for looking inside.
Tests hold the paths equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from . import registry
from .base import Model
from .core import LayerState, State


class CharRNN(Model):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        self.kind: registry.Kind = registry.get(cfg.cell)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.core = self.kind.load()(cfg, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.core.out_size, cfg.vocab_size)
        self.core.attach(self)  # a kind may adjust the model around it (see core.py's optional hooks)

    # PyTorch's own initialisation throughout: its logits start small enough that the
    # first loss is ln(V) to within 0.01. Measured on tinyshakespeare (bench/RESULTS.md),
    # a near-zero output layer (std 0.02) or a forget-gate bias of 1 both made the
    # first 500 steps slower (val 1.93 and 1.92 against 1.82 nats/char).

    # ------------------------------------------------------------------ state

    def init_state(self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        p = self.head.weight
        return self.core.init_state(batch_size, device or p.device, dtype or p.dtype)

    def split_state(self, state: State) -> list[LayerState]:
        return self.core.split_state(state)

    def join_state(self, layers: list[LayerState]) -> State:
        return self.core.join_state(layers)

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
        out, state = self.core(x, state, reset, **self._ids(idx))  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(B * T))
        return logits, loss, state

    # ---------------------------------------------------------- per-step path

    @torch.no_grad()
    def step(self, idx: Tensor, state: State) -> tuple[Tensor, State]:
        """One timestep: idx (B,) -> logits (B, V), new state. Inference only (no dropout)."""
        logits, layers = self.step_layers(idx, self.split_state(state))
        return logits, self.join_state(layers)

    @torch.no_grad()
    def step_layers(self, idx: Tensor, layers: list[LayerState]) -> tuple[Tensor, list[LayerState]]:
        """`step` on a per-layer state list: the sampler's hot path, which skips
        stacking the layers into (L, B, ...) at every token."""
        top, layers = self.core.step(self.embed(idx), layers, **self._ids(idx))  # (B, H)
        return self.head(top), layers

    def trace(self, idx: Tensor, state: State | None = None) -> "Trace":
        """Unroll the per-step path over idx (B, T), keeping every internal signal:
        signals[name] is (L, B, T, H); logits (B, T, V). Runs under autograd so that
        gradients through time can be taken from it."""
        B, T = idx.shape
        if state is None:
            state = self.init_state(B)
        tr = self.core.trace(self.embed(idx), state, **self._ids(idx))
        logits = self.head(self.drop(tr.out))  # (B, T, V)
        return Trace(logits=logits, signals=tr.signals, state=tr.state, steps=tr.steps)

    def _ids(self, idx: Tensor) -> dict[str, Tensor]:
        """The token ids for a core that reads them (a Jordan net: in a language model the
        known previous output, fed back under teacher forcing, is the current input)."""
        return {"ids": idx} if self.core.reads_ids else {}


@dataclass(frozen=True)
class Trace:
    logits: Tensor  # (B, T, V)
    signals: dict[str, Tensor]  # name -> (L, B, T, H)
    state: State
    steps: dict[str, list[list[Tensor]]]  # name -> [layer][t] -> (B, H): the graph's own tensors, for autograd.grad
