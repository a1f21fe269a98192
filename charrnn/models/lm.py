"""CharRNN: embedding -> recurrent core -> linear head, a language model of any kind.

    x(t) = E[idx(t)]                    the token's embedding
    h(t) = core(x(t), state(t-1))       any kind in the registry (rnn, lstm, gru, ...)
    o(t) = c + V h(t)                   (eq. 10.10), softmax over the vocabulary

Around the core, two optional parts (the lm task's options, tasks/lm_options.py):
a label context (context.py), which widens x(t) by C[label] and/or sets h(0) at
each document's start, and an end model (ends.py), a halt output or a length
output with the remaining length as one more input. Without them the model is
exactly the plain one above, and so are its parameters' names.

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
from ..errors import ConfigError
from ..tasks.lm_options import LMOptions
from . import registry
from .base import Model
from .context import LabelContext
from .core import LayerState, State
from .ends import REMAINING_EMBED, Ends, wide


def lm_options(cfg: ModelConfig) -> LMOptions:
    """The lm task's options of a config (the defaults for a config of another task)."""
    opts = cfg.task_options()
    return opts if isinstance(opts, LMOptions) else LMOptions()


class CharRNN(Model):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        self.kind: registry.Kind = registry.get(cfg.cell)
        opts = lm_options(cfg)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.context = LabelContext(opts) if opts.conditioned else None
        extra = (self.context.input_size if self.context else 0) + (REMAINING_EMBED if opts.length_model == "length" else 0)
        self.core = self.kind.load()(cfg, cfg.embed + extra)
        if opts.label_init and self.core.reads_ids:
            raise ConfigError(f"--cell {cfg.cell}'s state is its own fed-back output, so a label cannot set h(0): "
                              "pass --condition input.")  # fmt: skip
        if self.context is not None:
            self.context.attach(cfg.layers, self.core.state_shapes())
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.core.out_size, cfg.vocab_size)
        self.ends = Ends(opts.length_model, self.core.out_size, opts.labels) if opts.length_model != "eos" else None
        self.core.attach(self)  # a kind may adjust the model around it (see core.py's optional hooks)

    # PyTorch's own initialisation throughout: its logits start small enough that the
    # first loss is ln(V) to within 0.01. Measured on tinyshakespeare (bench/RESULTS.md),
    # a near-zero output layer (std 0.02) or a forget-gate bias of 1 both made the
    # first 500 steps slower (val 1.93 and 1.92 against 1.82 nats/char).

    # ------------------------------------------------------------------ state

    def init_state(self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        p = self.head.weight
        return self.core.init_state(batch_size, device or p.device, dtype or p.dtype)

    def start_state(self, batch_size: int, labels: Tensor | None = None) -> State:
        """The state a document starts from: h(0) of its label (B,) when the label sets it
        (None: "no label"), else zeros, as init_state."""
        if self.context is None or self.context.init is None:
            return self.init_state(batch_size)
        p = self.head.weight
        lab = self.context.fill(labels, torch.empty(batch_size, device=p.device))
        return tuple(s.to(p.dtype) for s in self.context.start(lab))

    def split_state(self, state: State) -> list[LayerState]:
        return self.core.split_state(state)

    def join_state(self, layers: list[LayerState]) -> State:
        return self.core.join_state(layers)

    # ---------------------------------------------------------------- forward

    def inputs(self, idx: Tensor, labels: Tensor | None = None, remaining: Tensor | None = None) -> Tensor:
        """x(t) for ids of any shape (...,): E[idx], then C[label] and the remaining
        length's embedding where the model has them -> (..., I)."""
        x = self.embed(idx)  # (..., E)
        if self.context is None and self.ends is None:
            return x
        parts = [x]
        if self.context is not None and self.context.feeds_input:
            parts.append(self.context.vectors(self.context.fill(labels, idx)).to(x.dtype))  # (..., D)
        if self.ends is not None and self.ends.kind == "length":
            r = self.ends.default_remaining(idx) if remaining is None else remaining
            parts.append(self.ends.inputs(r).to(x.dtype))  # (..., R)
        return torch.cat(parts, -1)

    def _labels(self, labels: Tensor | None, like: Tensor) -> Tensor | None:
        return None if self.context is None else self.context.fill(labels, like)

    def outputs(self, idx: Tensor, state: State | None = None, reset: Tensor | None = None, labels: Tensor | None = None,
                remaining: Tensor | None = None) -> tuple[Tensor, State]:  # fmt: skip
        """The core over idx (B, T): its top output after dropout (B, T, H), which the
        heads read, and the final state."""
        B, T = idx.shape
        if state is None:
            state = self.init_state(B)
        x = self.inputs(idx, labels, remaining)  # (B, T, I)
        if reset is not None and self.context is not None and self.context.init is not None:
            h0 = self.context.start(self.context.fill(labels, idx))  # each (L, B, T, ...): h(0) where a document starts
            out, state = self.core(x, state, reset, h0, **self._ids(idx))  # (B, T, H)
        else:
            out, state = self.core(x, state, reset, **self._ids(idx))  # (B, T, H)
        return self.drop(out), state

    def forward(
        self, idx: Tensor, state: State | None = None, targets: Tensor | None = None, reset: Tensor | None = None,
        labels: Tensor | None = None, remaining: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, State]:  # fmt: skip
        """idx (B, T) token ids -> logits (B, T, V), mean loss per token if targets, final state.

        `reset` (B, T) bool marks the timesteps whose input starts a document: the
        state restarts just before that input is read, from zeros or from the
        label's h(0) (the end-of-document token doubles as the start symbol, so
        training sees what sampling sees). `labels` (B, T) is the label of the
        document each step predicts (None: "no label"); `remaining` (B, T) the
        length left in it (the length model; None: the text is one document).
        With an end model the loss adds its share (halt positives weighted).
        """
        B, T = idx.shape
        out, state = self.outputs(idx, state, reset, labels, remaining)  # (B, T, H)
        logits = self.head(out)  # (B, T, V)
        loss = None
        if self.ends is not None:
            logits = self.ends.mask(logits)
            if targets is not None:
                nats = self.ends.nats(logits, out, idx, targets, self._labels(labels, idx), remaining, weighted=True)
                loss = nats.sum() / (B * T)
        elif targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(B * T))
        return logits, loss, state

    def nats(
        self, idx: Tensor, targets: Tensor, state: State | None = None, reset: Tensor | None = None,
        labels: Tensor | None = None, remaining: Tensor | None = None,
    ) -> tuple[Tensor, State]:  # fmt: skip
        """-log p of each target (B, T) in nats, the end model's share included and
        unweighted (the true likelihood, for scoring a split), and the final state."""
        out, state = self.outputs(idx, state, reset, labels, remaining)
        logits = self.head(out)  # (B, T, V)
        if self.ends is None:
            return F.cross_entropy(wide(logits).transpose(1, 2), targets, reduction="none"), state
        logits = self.ends.mask(logits)
        return self.ends.nats(logits, out, idx, targets, self._labels(labels, idx), remaining, weighted=False), state

    # ---------------------------------------------------------- per-step path

    @torch.no_grad()
    def step(self, idx: Tensor, state: State, labels: Tensor | None = None, remaining: Tensor | None = None) -> tuple[Tensor, State]:
        """One timestep: idx (B,) -> logits (B, V), new state. Inference only (no dropout)."""
        logits, layers = self.step_layers(idx, self.split_state(state), labels, remaining)
        return logits, self.join_state(layers)

    @torch.no_grad()
    def step_layers(self, idx: Tensor, layers: list[LayerState], labels: Tensor | None = None,
                    remaining: Tensor | None = None) -> tuple[Tensor, list[LayerState]]:  # fmt: skip
        """`step` on a per-layer state list: the sampler's hot path, which skips
        stacking the layers into (L, B, ...) at every token."""
        top, layers = self.step_top(idx, layers, labels, remaining)  # (B, H)
        logits = self.head(top)
        return (logits if self.ends is None else self.ends.mask(logits)), layers

    @torch.no_grad()
    def step_top(self, idx: Tensor, layers: list[LayerState], labels: Tensor | None = None,
                 remaining: Tensor | None = None) -> tuple[Tensor, list[LayerState]]:  # fmt: skip
        """One timestep's top output (B, H) and new layer states: what the heads read."""
        if remaining is None and self.ends is not None and self.ends.kind == "length":
            raise ValueError("a length model's step needs the remaining length")
        return self.core.step(self.inputs(idx, labels, remaining), layers, **self._ids(idx))

    def trace(self, idx: Tensor, state: State | None = None, labels: Tensor | None = None,
              remaining: Tensor | None = None) -> "Trace":  # fmt: skip
        """Unroll the per-step path over idx (B, T), keeping every internal signal:
        signals[name] is (L, B, T, H); logits (B, T, V); with a halt output, p(halt)
        (B, T). Runs under autograd so that gradients through time can be taken from it.
        The state does not restart inside idx: give the start state (start_state)."""
        B, T = idx.shape
        if state is None:
            state = self.init_state(B)
        tr = self.core.trace(self.inputs(idx, labels, remaining), state, **self._ids(idx))
        out = self.drop(tr.out)
        logits = self.head(out)  # (B, T, V)
        halt = None
        if self.ends is not None:
            logits = self.ends.mask(logits)
            if self.ends.kind == "halt":
                halt = torch.sigmoid(self.ends.halt_logit(out))  # (B, T)
        return Trace(logits=logits, signals=tr.signals, state=tr.state, steps=tr.steps, halt=halt)

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
    halt: Tensor | None = None  # (B, T) p(the sequence ends after each token): a model with a halt output
