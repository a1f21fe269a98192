"""Output-to-hidden recurrence: a Jordan network (section 10.2.1, figure 10.4).

    h(t) = tanh(b + W o(t-1) + U x(t))
    o(t) = c + V h(t)                       (the model's head)

The hidden layer sees the previous *output*, not the previous hidden state:
everything the past can tell the present must pass through o, one distribution
over the vocabulary. What o(t-1) is:

- `--feedback target` (teacher forcing, the default): the known previous target
  as a one-hot vector, so W o(t-1) is one column of W. No step depends on the
  step before it, and training runs over every timestep at once: no loop over
  time at all. In a language model the previous target *is* the current input,
  so the net sees x(t) twice and nothing older: at best a bigram model, which
  is the chapter's point, measured by `charrnn compare` beside the n-gram rows.
- `--feedback model`: the model's own output distribution softmax(o(t-1)),
  from the head; sequential, as sampling is. Gradients flow back through it.

Sampling always feeds back what was generated, the one-hot of the token drawn,
which is again the next input. `feeding(model, mode)` switches what training and
evaluation feed back, so the two losses can be compared on the same text: the
gap between teacher-forced and free-running loss is the exposure bias.

Layers: layer k reads the layer below and the fed-back output through its own
W_k (H, V). The state is h (L, B, H) after the last step: under --feedback model
the top layer's gives o(t-1); under teacher forcing nothing is carried at all.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .core import CoreTrace, LayerState, Recurrent, State, keep_rows
from .options import JordanOptions


class JordanCore(Recurrent):
    reads_ids = True

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        opts: JordanOptions = cfg.cell_options()
        self.feedback = opts.feedback
        H, L, V = cfg.hidden, cfg.layers, cfg.vocab_size
        k = 1 / math.sqrt(H)  # PyTorch's nn.RNN initialisation
        self.U = nn.ParameterList(nn.Parameter(torch.empty(H, input_size if j == 0 else H).uniform_(-k, k)) for j in range(L))
        self.W = nn.ParameterList(nn.Parameter(torch.empty(H, V).uniform_(-k, k)) for _ in range(L))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(H).uniform_(-k, k)) for _ in range(L))
        self._head: tuple[nn.Module, ...] = ()

    def attach(self, model: nn.Module) -> None:
        self._head = (model.head,)  # in a tuple: the model owns the head; the core only reads it

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.U[k], self.W[k], self.b[k]

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        return F.linear(x, p[0], p[2])  # (..., H)  U x + b

    def _output(self, h_top: Tensor) -> Tensor:
        """softmax(o(t-1)) (B, V) from the top layer's h(t-1): what the model itself said."""
        logits = self._head[0](h_top)  # (B, V)
        wide = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits  # a softmax in half precision loses mass
        return torch.softmax(wide, -1).to(logits.dtype)

    # ------------------------------------------------------------ the paths

    def forward(self, x: Tensor, state: State, reset: Tensor | None = None, ids: Tensor | None = None) -> tuple[Tensor, State]:
        if self.feedback == "target":
            out, state, _, _ = self._forced(x, ids)
        else:
            out, state, _, _ = self._free(x, state, reset)
        return out, state

    def trace(self, x: Tensor, state: State, ids: Tensor | None = None) -> CoreTrace:
        out, final, signals, steps = self._forced(x, ids, keep=True) if self.feedback == "target" else self._free(x, state, None, keep=True)
        return CoreTrace(out, final, signals, steps)

    def step(self, x: Tensor, layers: list[LayerState], ids: Tensor | None = None) -> tuple[Tensor, list[LayerState]]:
        """One token through every layer, feeding back the token just generated (ids (B,), the input)."""
        new = []
        for k in range(self.num_layers):
            U, W, b = p = self.layer_params(k)
            x = torch.tanh(self.project(x, p) + F.embedding(ids, W.t()))  # (B, H)
            new.append((x,))
        return x, new

    def _forced(self, x: Tensor, ids: Tensor | None, keep: bool = False) -> tuple[Tensor, State, dict, dict]:
        """Teacher forcing: o(t-1) is the one-hot previous target, ids (B, T) in a language
        model. Every timestep at once. With `keep`, every signal and the per-step h (whose
        gradients the inspector takes) are kept."""
        if ids is None:
            raise ValueError("a Jordan core under teacher forcing needs the token ids")
        finals, rec = [], {"h": [], "a": [], "fed": []}
        steps: dict[str, list[list[Tensor]]] = {"h": [], "a": [], "fed": []}
        for k in range(self.num_layers):
            U, W, b = p = self.layer_params(k)
            fed = F.embedding(ids, W.t())  # (B, T, H)  W o(t-1): a column of W per step
            a = self.project(x, p) + fed
            h = torch.tanh(a)
            if keep:  # the per-step tensors in the graph, so gradients can be taken at each
                per_t = list(h.unbind(1))
                h = torch.stack(per_t, 1)
                for n, v in (("h", h), ("a", a), ("fed", fed)):
                    rec[n].append(v)
                steps["h"].append(per_t)
                steps["a"].append(list(a.unbind(1)))
                steps["fed"].append(list(fed.unbind(1)))
            finals.append((h[:, -1],))
            x = self._between(h, k)
        signals = {n: torch.stack(v) for n, v in rec.items()} if keep else {}
        return x, self.join_state(finals), signals, steps

    def _free(self, x: Tensor, state: State, reset: Tensor | None, keep: bool = False) -> tuple[Tensor, State, dict, dict]:
        """The model's own output fed back: one timestep after another."""
        at: set[int] = set()
        if reset is not None and bool(reset.any()):
            at = set(reset.any(0).nonzero().flatten().tolist())
        hs = [s[0] for s in self.split_state(state)]  # (B, H) per layer
        L = self.num_layers
        steps: dict[str, list[list[Tensor]]] = {n: [[] for _ in range(L)] for n in ("h", "a", "fed")}
        xp0 = self.project(x, self.layer_params(0))  # (B, T, H): layer 0's input share, all at once
        outs = []
        for t, xp_t in enumerate(xp0.unbind(1)):
            if t in at:
                hs = list(keep_rows(tuple(hs), ~reset[:, t], 0))  # type: ignore[index]
            probs = self._output(hs[-1])  # (B, V)
            inp = None
            for k in range(L):
                U, W, b = p = self.layer_params(k)
                fed = probs @ W.t()  # (B, H)  W o(t-1)
                a = (xp_t if k == 0 else self.project(inp, p)) + fed
                hs[k] = torch.tanh(a)
                inp = self._between(hs[k], k)
                if keep:
                    for n, v in (("h", hs[k]), ("a", a), ("fed", fed)):
                        steps[n][k].append(v)
            outs.append(inp)
        out = torch.stack(outs, 1)  # (B, T, H)
        signals = {n: torch.stack([torch.stack(per_t, 1) for per_t in v]) for n, v in steps.items()} if keep else {}
        return out, self.join_state([(h,) for h in hs]), signals, steps if keep else {}

    @classmethod
    def describe(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Any]:
        how = {"target": "target (teacher forcing: the known previous output, parallel over time)",
               "model": "model (its own output distribution, step by step)"}  # fmt: skip
        return {"feedback": how[cfg.cell_options().feedback]}


@contextlib.contextmanager
def feeding(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """The Jordan model feeding back `mode` ("target" or "model") inside the block."""
    core = model.core
    old, core.feedback = core.feedback, mode
    try:
        yield model
    finally:
        core.feedback = old
