"""Generation: a token stream with carried state, and stop-symbol handling.

The prime text runs through the fused path once; every new token then costs one
`model.step()` with the state carried from the last, however long the text has
grown. Text is yielded as soon as it is certain: a tail as long as the longest
stop string (less one) is held back, because it might be the start of one.
Generation ends at the end-of-document token (unless told not to), at the first
stop string, and always at `length` generated characters.

A model conditioned on labels starts from its label's start state and reads the
label at every step (`label`: its index; None: "no label"). With an end model
the document's end is not a token the softmax draws: a halt model draws its
Bernoulli output after every token and ends on a success; a length model first
draws the length tau (at least the prime's), then generates exactly tau tokens,
the remaining length read at every step. `--no-stop` runs on into a new
document either way (a new tau for the length model).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

import torch
from torch import Tensor

from ..config import SampleConfig
from ..data.labels import LabelSet
from ..data.tokenizer import Tokenizer
from ..errors import ConfigError
from ..models.lm import CharRNN


def eos_text(doc_sep: str | None) -> str:
    """How an end-of-document token reads when generation runs past it (--no-stop)."""
    return {None: "\n", "line": "\n", "file": "\n", "blank": "\n\n"}.get(doc_sep, f"\n{doc_sep}\n")


def labels_of(ck: dict[str, Any]) -> LabelSet | None:
    """The label set a checkpoint's model is conditioned on (None: not conditioned)."""
    state = ck.get("labels")
    return None if state is None else LabelSet.from_state(state)


def label_index(ck: dict[str, Any], name: str | None) -> int | None:
    """The index of label `name` in a checkpoint's label set (None for no label); a
    one-line ConfigError for an unknown name (listing the known ones) or a model with no labels."""
    if name is None:
        return None
    labels = labels_of(ck)
    if labels is None:
        raise ConfigError("this model was not trained on labelled documents (--label-from), so it takes no --label.")
    return labels.index(name)


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


def pick(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, gen: torch.Generator) -> int:
    """One token id from logits (V,): greedy at temperature 0, else softmax(logits / T)
    restricted to the k most likely and/or the smallest set with mass >= top_p."""
    logits = logits.detach().float().cpu()
    if temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        probs, order = torch.sort(torch.softmax(logits, -1), descending=True)
        drop = torch.cumsum(probs, 0) - probs >= top_p  # mass before this token already reaches p
        logits[order[drop]] = -math.inf
    probs = torch.softmax(logits, -1)
    return int(torch.multinomial(probs, 1, generator=gen))


class _Emitter:
    """Generated pieces in, text out as soon as it is certain: a tail as long as the
    longest stop string (less one) is held back, since it may begin one."""

    def __init__(self, cfg: SampleConfig):
        self.cfg = cfg
        self.hold = max((len(s) for s in cfg.stop), default=1) - 1
        self.pending, self.produced, self.stopped = "", 0, False  # text not yet yielded; characters generated

    @property
    def done(self) -> bool:
        return self.stopped or self.produced >= self.cfg.length

    def push(self, piece: str) -> str:
        cfg = self.cfg
        piece = piece[: cfg.length - self.produced]
        self.produced += len(piece)
        self.pending += piece
        if cfg.stop:
            new = len(self.pending) - len(piece)  # a new match must end inside the new piece
            hits = [at for s in cfg.stop if (at := self.pending.find(s, max(0, new - len(s) + 1))) >= 0]
            if hits:
                self.pending = self.pending[: min(hits)]
                self.stopped = True
                return ""
        if len(self.pending) > self.hold:
            out, self.pending = self.pending[: len(self.pending) - self.hold], self.pending[len(self.pending) - self.hold :]
            return out
        return ""


@torch.inference_mode()
def generate(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    gen: torch.Generator | None = None,
    eos_as: str = "\n",
    label: int | None = None,
    taus: list[int] | None = None,
) -> Iterator[str]:
    """Yield the prime, then generated text in pieces as it becomes certain.

    `label` is the label index a conditioned model generates for (None: "no
    label"); the lengths a length model draws are appended to `taus` when given.
    Raises UnknownCharactersError for prime characters outside the vocabulary
    (unless cfg.unknown == "skip").
    """
    cfg.validate()
    model.eval()
    if gen is None:
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else new_seed())
    device = model.head.weight.device
    eos = tokenizer.eos_id
    context = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
    if cfg.prime:
        yield tokenizer.decode(context)
    start = [eos] if eos is not None else []
    if not start and not context:
        newline = tokenizer.encode("\n", unknown="skip")
        start = newline or [int(torch.randint(tokenizer.vocab_size, (1,), generator=gen))]
        if not newline:
            yield tokenizer.decode(start)
    decoder = tokenizer.stream_decoder()
    em = _Emitter(cfg)
    idx = torch.empty(1, dtype=torch.long, device=device)
    if model.context is None and model.ends is None:  # the plain model: the end-of-document token ends a text
        logits, _, state = model(torch.tensor([start + context], dtype=torch.long, device=device))  # (1, P, V)
        logits = logits[0, -1]  # (V,)
        layers = model.split_state(state)
        while not em.done:
            i = pick(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)
            if i == eos and cfg.stop_at_eos:
                break
            out = em.push(eos_as if i == eos else decoder.push(i))
            if out:
                yield out
            if em.stopped:
                break
            idx[0] = i
            logits, layers = model.step_layers(idx, layers)
            logits = logits[0]
    else:
        doc = _Document(model, label, gen, taus)
        logits, layers = doc.begin(start + context, len(context))
        while not em.done:
            if doc.ended:
                if cfg.stop_at_eos:
                    break
                i, piece = eos, eos_as  # --no-stop: on into a new document, its start symbol read next
            else:
                i = pick(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)  # never the end token: masked
                piece = decoder.push(i)
            out = em.push(piece)
            if out:
                yield out
            if em.stopped:
                break
            idx[0] = i
            logits, layers = doc.step(idx, layers, i == eos)
    if em.pending:
        yield em.pending


class _Document:
    """Where a conditioned or end-modelled generation stands in its document: the
    label it reads, whether the document has ended, the length left (length model)."""

    def __init__(self, model: CharRNN, label: int | None, gen: torch.Generator, taus: list[int] | None):
        self.model, self.gen, self.taus = model, gen, taus
        device = model.head.weight.device
        self.label = None if label is None else torch.tensor([label], device=device)
        self.kind = model.ends.kind if model.ends is not None else "eos"
        self.for_length = None if model.context is None else model.context.fill(self.label, torch.empty(1, device=device))
        self.ended, self.left = False, 0

    def _tau(self, at_least: int) -> int:
        tau = self.model.ends.draw_length(self.for_length, self.gen, at_least=max(at_least, 1))  # type: ignore[union-attr]
        if self.taus is not None:
            self.taus.append(tau)
        return tau

    def _heads(self, top: Tensor, real: bool) -> Tensor:
        """The logits (V,) after an input; a halt model draws its output after a real token."""
        m = self.model
        logits = m.head(top)  # (1, V)
        if m.ends is not None:
            logits = m.ends.mask(logits)
        if self.kind == "halt":
            p = torch.sigmoid(m.ends.halt_logit(top))  # type: ignore[union-attr]
            self.ended = real and float(torch.rand(1, generator=self.gen)) < float(p[0])
        elif self.kind == "length":
            self.ended = self.left == 0
        return logits[0]

    def begin(self, ids: list[int], known: int) -> tuple[Tensor, list]:
        """The start state, then the start symbol and the prime (`known` tokens) read."""
        m = self.model
        device = m.head.weight.device
        prefix = torch.tensor([ids], dtype=torch.long, device=device)  # (1, P)
        remaining = None
        if self.kind == "length":
            tau = self._tau(known)
            remaining = torch.tensor([[tau - k for k in range(len(ids))]], device=device)  # (1, P): tau at the start symbol
            self.left = tau - known
        labels = None if self.label is None else self.label.expand(1, len(ids))
        out, state = m.outputs(prefix, m.start_state(1, self.label), None, labels, remaining)  # (1, P, H)
        return self._heads(out[:, -1], real=known > 0), m.split_state(state)

    def step(self, idx: Tensor, layers: list, starts: bool) -> tuple[Tensor, list]:
        """Read one token (the start symbol of a new document when `starts`)."""
        remaining = None
        if self.kind == "length":
            self.left = self._tau(1) if starts else self.left - 1
            remaining = torch.tensor([self.left], device=idx.device)
        top, layers = self.model.step_top(idx, layers, self.label, remaining)
        return self._heads(top, real=not starts), layers


def sample_text(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator | None = None, eos_as: str = "\n",
                label: int | None = None, taus: list[int] | None = None) -> str:  # fmt: skip
    return "".join(generate(model, tokenizer, cfg, gen, eos_as, label, taus))
