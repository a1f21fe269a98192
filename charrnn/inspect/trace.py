"""Tracing a text through a model: every internal signal and the gradient through time, as numpy.

Everything here runs the per-step path (`CharRNN.trace`) on one short text and
hands back plain arrays, so the inspector, the TUI and other tools read the same
numbers. A text is read the way sampling reads it: for a model with documents,
from the start-of-document state (the end-of-document token fed first, not shown);
for a model conditioned on labels, under a label (an index; None: "no label"),
starting from that label's start state; for a length model, as one whole document.

Indices are 0-based, as in PyTorch: layer 0 is nearest the input, position t is
the t-th token of the text, and a signal at t is the value after reading token t.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..data.tokenizer import Tokenizer
from ..errors import TokenizerError
from ..models.lm import CharRNN, Trace


@dataclass(frozen=True)
class Activations:
    text: str
    ids: np.ndarray  # (T,) token ids of the text
    tokens: tuple[str, ...]  # (T,) how each token reads
    cell: str
    signals: dict[str, np.ndarray]  # name -> (L, T, H) float32: h, c, gates...
    probs: np.ndarray  # (T, V) float32: the next-token distribution after each token
    vocab: tuple[str, ...] = ()  # (V,) how each token id reads, for prediction tables
    offsets: np.ndarray | None = field(default=None, compare=False)  # (T+1,) where token t starts in `text`
    units: dict[str, np.ndarray] = field(default_factory=dict, compare=False)  # name -> (L, H): per-unit constants (a leaky unit's tau)
    halt: np.ndarray | None = field(default=None, compare=False)  # (T,) p(the text ends after token t): a halt model

    @property
    def layers(self) -> int:
        return next(iter(self.signals.values())).shape[0]

    @property
    def hidden(self) -> int:
        return next(iter(self.signals.values())).shape[2]


@dataclass(frozen=True)
class Probe:
    """What the training loop sends to a UI about once a second."""

    step: int
    acts: Activations
    grad_flow: dict[str, np.ndarray]  # "h" (and "c") -> (L, T): |dL_T / d h_t|
    label: str | None = None  # the label traced under (None: no label, or a model without labels)
    labels: tuple[str, ...] = ()  # the labels the model knows, for a UI to offer
    task: str = "lm"
    prediction: Any = None  # tasks.use.Prediction of the probe text, drawn by the task's view (classify, seq2seq)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _ids(tokenizer: Tokenizer, text: str, unknown: str) -> list[int]:
    ids = tokenizer.encode(text, unknown=unknown)
    if not ids:
        raise TokenizerError("the text is empty; give a few characters the model knows.")
    return ids


def token_texts(tokenizer: Tokenizer, ids: list[int]) -> tuple[str, ...]:
    """How each id reads on its own ("<eod>" for the end-of-document token)."""
    show = getattr(tokenizer, "token_text", None)
    return tuple(show(i) if show else tokenizer.decode([i]) for i in ids)


def _context(model: CharRNN, tokenizer: Tokenizer, ids: list[int]) -> torch.Tensor:
    start = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    return torch.tensor([start + ids], dtype=torch.long, device=model.head.weight.device)  # (1, S+T)


def _traced(model: CharRNN, idx: torch.Tensor, label: int | None, grad: bool = False) -> Any:
    """model.trace over idx (1, T) from the start state, under `label`. With `grad`, from a
    start state that asks for gradients, so that h_t does even where no weight of the
    recurrence trains (a frozen reservoir)."""
    lab = None if label is None else torch.tensor([label], device=idx.device)
    labels = None if lab is None else lab.expand(idx.shape)
    conditioned = hasattr(model, "start_state")  # a language model (labels or not); a classifier or encoder has none
    state = model.start_state(1, lab) if conditioned else model.init_state(1)
    if grad:
        state = tuple(s if s.requires_grad else s.detach().requires_grad_() for s in state)
    return model.trace(idx, state, labels) if conditioned else model.trace(idx, state)


def activations(model: CharRNN, tokenizer: Tokenizer, text: str, unknown: str = "error", label: int | None = None) -> Activations:
    ids = _ids(tokenizer, text, unknown)
    with evaluating(model), torch.no_grad():
        tr = _traced(model, _context(model, tokenizer, ids), label)
    return _activations_of(model, tokenizer, ids, tr)


def _activations_of(model: CharRNN, tokenizer: Tokenizer, ids: list[int], tr: Trace) -> Activations:
    """A trace of the start symbol (if any) and `ids`, as numpy arrays without the start symbol."""
    skip = int(tokenizer.eos_id is not None)
    signals = {k: v[:, 0, skip:].detach().float().cpu().numpy() for k, v in tr.signals.items()}  # (L, T, H)
    probs = torch.softmax(tr.logits[0, skip:].detach().float(), -1).cpu().numpy()  # (T, V)
    text = tokenizer.decode(ids)
    vocab = token_texts(tokenizer, list(range(tokenizer.vocab_size)))
    units = {k: v.detach().float().cpu().numpy() for k, v in model.core.unit_info().items()}
    halt = None if tr.halt is None else tr.halt[0, skip:].detach().float().cpu().numpy()  # (T,)
    return Activations(
        text, np.array(ids), token_texts(tokenizer, ids), model.cfg.cell, signals, probs, vocab, _offsets(tokenizer, ids, text), units=units, halt=halt
    )


def _offsets(tokenizer: Tokenizer, ids: list[int], text: str) -> np.ndarray:
    """(T+1,) character offsets of the tokens in the decoded text, so that a pattern
    matched on the text can be mapped back to token positions."""
    dec = tokenizer.stream_decoder()
    lengths = [len(dec.push(i)) for i in ids]
    if sum(lengths) != len(text):  # a decoder that holds text back: decode every prefix (slow, exact)
        lengths = np.diff([0] + [len(tokenizer.decode(ids[: t + 1])) for t in range(len(ids))]).tolist()
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def gradient_flow(
    model: nn.Module, tokenizer: Tokenizer, text: str, unknown: str = "error", label: int | None = None,
    loss_of: Callable[[Any], torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """|dL_T / d s_t| for every state tensor s the kind carries (h; an LSTM's cell c
    too), every layer and every t <= T, where L_T is the loss of the last prediction
    in the text (its last token, predicted from the rest), or `loss_of(trace)` of the
    whole text for a model that answers once at the end. Index t reads "T - t steps
    back" from the end: the vanishing (or exploding) gradient of section 10.7,
    measured on this model."""
    ids = _ids(tokenizer, text, unknown)
    if len(ids) < 2:
        raise TokenizerError("the text needs at least two tokens to measure gradients through time.")
    start = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    return gradient_flow_ids(model, start + ids, len(start), label, loss_of)


def gradient_flow_ids(
    model: nn.Module, ids: list[int], skip: int = 0, label: int | None = None, loss_of: Callable[[Any], torch.Tensor] | None = None
) -> dict[str, np.ndarray]:
    """gradient_flow() over token ids, the first `skip` of them read but not reported
    (a start-of-document token), under `label` or scored by `loss_of`."""
    with evaluating(model), torch.enable_grad():
        idx = torch.tensor([ids], dtype=torch.long, device=model.head.weight.device)  # (1, S+T)
        if loss_of is None:  # the last prediction, under `label` (a language model)
            tr = _traced(model, idx[:, :-1], label, grad=True)
            loss = torch.nn.functional.cross_entropy(tr.logits[0, -1:].float(), idx[0, -1:])
        else:  # a model that answers once at the end, from a start state that asks for gradients
            tr = model.trace(idx, tuple(s.requires_grad_() for s in model.init_state(1)))
            loss = loss_of(tr)
        return grad_norms(loss, {n: tr.steps[n] for n in model.kind.state if n in tr.steps}, skip)


def grad_norms(loss: torch.Tensor, steps: dict[str, list[list[torch.Tensor]]], skip: int = 0) -> dict[str, np.ndarray]:
    """|d loss / d s_t| for each state name's per-layer, per-step tensors (steps[name][layer][t]),
    as (L, T - skip) arrays: the first `skip` steps (a start symbol) left out."""
    flat = [t for layers in steps.values() for layer in layers for t in layer]
    grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
    out = {}
    for n, layers in steps.items():
        norms = np.array([[0.0 if (g := next(grads)) is None else float(g.norm()) for _ in layer] for layer in layers], dtype=np.float32)
        out[n] = norms[:, skip:]
    return out


def probe(model: CharRNN, tokenizer: Tokenizer, text: str, step: int, label: int | None = None,
          labels: tuple[str, ...] = ()) -> Probe:  # fmt: skip
    """`activations` and `gradient_flow` of a text (unknown characters skipped), the
    TUI's frame, from one traced pass under autograd: the gradient of the last
    prediction reaches back through the very graph whose signals are shown. This
    runs in the training thread between steps, so its cost is training's: one pass
    (and one norm per layer, not one per step) costs about 0.7x the two calls. The text is
    traced under `label` (an index into `labels`, the model's label names; None: no label)."""
    ids = _ids(tokenizer, text, "skip")
    skip = int(tokenizer.eos_id is not None)
    flow: dict[str, np.ndarray] = {}
    with evaluating(model), torch.enable_grad():
        idx = _context(model, tokenizer, ids)  # (1, S+T)
        tr = _traced(model, idx, label, grad=True)
        if len(ids) >= 2:
            loss = torch.nn.functional.cross_entropy(tr.logits[0, -2:-1].float(), idx[0, -1:])  # the last token, from the rest
            # the steps that lead to that prediction: all but the last, as gradient_flow traces them
            steps = {n: [layer[:-1] for layer in tr.steps[n]] for n in model.kind.state if n in tr.steps}
            flat = [t for layers in steps.values() for layer in layers for t in layer]
            grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
            for n, layers in steps.items():
                rows = [torch.stack([g if (g := next(grads)) is not None else torch.zeros_like(t) for t in layer]) for layer in layers]
                flow[n] = torch.stack([r.flatten(1).norm(dim=1) for r in rows]).float().cpu().numpy()[:, skip:]  # (L, T-1)
    return Probe(step, _activations_of(model, tokenizer, ids, tr), flow, None if label is None else labels[label], tuple(labels))
