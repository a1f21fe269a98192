"""Generation: a token stream with carried state, and stop-symbol handling.

The prime text runs through the fused path once; every new token then costs one
`model.step()` with the state carried from the last, however long the text has
grown. Text is certain once no stop string can still claim it: a tail as long as
the longest stop string (less one) is held back, because it might be the start of
one. Certain text is yielded at once the first time, then at most every FLUSH_S
seconds (and at the end), which no reader sees and which saves a generator
resumption a token.
Generation ends at the end-of-document token (unless told not to), at the first
stop string, and always at `length` generated characters.

`generate_batch` samples n texts as one batch of n streams (`charrnn sample --num
N`): the step of a small model costs little more for 32 rows than for one, so n
samples take far less than n times one. Its texts differ from n calls of
generate() with the same generator (the random numbers are drawn per batch).

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
import time
from typing import Any, Iterator

import torch
from torch import Tensor

from ..config import SampleConfig
from ..data.labels import LabelSet
from ..data.tokenizer import Tokenizer
from ..errors import ConfigError, TokenizerError
from ..models.lm import CharRNN
from .sampler import Sampler


FLUSH_S = 0.02  # how often, at most, generate() yields text: resuming it every token cost a few us of ~14 us to spare


def eos_text(doc_sep: str | None) -> str:
    """How an end-of-document token reads when generation runs past it (--no-stop)."""
    return {None: "\n", "line": "\n", "file": "\n", "blank": "\n\n"}.get(doc_sep, f"\n{doc_sep}\n")


def label_index(labels: LabelSet | None, name: str | None) -> int | None:
    """The index of label `name` in the label set a model is conditioned on (None for no
    label); a one-line ConfigError for an unknown name (listing the known ones) or a model
    with no labels."""
    if name is None:
        return None
    if labels is None:
        raise ConfigError("this model was not trained on labelled documents (--label-from), so it takes no --label.")
    return labels.index(name)


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


class _Stream:
    """One sample's text as tokens arrive: decoding, the end-of-document token, stop
    strings and the length limit. `push(id)` -> (text now certain, finished)."""

    def __init__(self, tokenizer: Tokenizer, cfg: SampleConfig, eos_as: str):
        self.cfg, self.eos, self.eos_as = cfg, tokenizer.eos_id, eos_as
        self.decoder = tokenizer.stream_decoder()
        self.hold = max((len(s) for s in cfg.stop), default=1) - 1
        self.pending, self.produced = "", 0  # text not yet given out; characters generated so far
        # A piece with no character of any stop string ends no match and leaves no possible
        # start of one at the end: all the text is then certain, and no search is made.
        self.stop_chars = frozenset("".join(cfg.stop))

    def push(self, i: int) -> tuple[str, bool]:
        cfg = self.cfg
        if i == self.eos:
            if cfg.stop_at_eos:
                return self.flush(), True
            piece = self.eos_as
        else:
            piece = self.decoder.push(i)
        nothing_to_hold = not cfg.stop or piece and self.stop_chars.isdisjoint(piece)
        if self.produced + len(piece) < cfg.length and nothing_to_hold:  # not the last piece
            self.produced += len(piece)
            if self.pending:
                piece, self.pending = self.pending + piece, ""
            return piece, False
        piece = piece[: cfg.length - self.produced]
        self.produced += len(piece)
        self.pending += piece
        if cfg.stop:
            new = len(self.pending) - len(piece)  # a new match must end inside the new piece
            hits = [at for s in cfg.stop if (at := self.pending.find(s, max(0, new - len(s) + 1))) >= 0]
            if hits:
                self.pending = self.pending[: min(hits)]
                return self.flush(), True
        if self.produced >= cfg.length:
            return self.flush(), True
        if len(self.pending) > self.hold:
            out, self.pending = self.pending[: len(self.pending) - self.hold], self.pending[len(self.pending) - self.hold :]
            return out, False
        return "", False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _prefix(tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator) -> tuple[str, list[int], list[int]]:
    """The printed prefix, the start symbol(s) and the prime's ids."""
    eos = tokenizer.eos_id
    context = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
    shown = tokenizer.decode(context) if cfg.prime else ""
    start = [eos] if eos is not None else []
    if not start and not context:
        newline = tokenizer.encode("\n", unknown="skip")
        start = newline or [int(torch.randint(tokenizer.vocab_size, (1,), generator=gen))]
        if not newline:
            shown += tokenizer.decode(start)
    return shown, start, context


def _start(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator) -> tuple[str, Tensor, list[Any]]:
    """The printed prefix, the top output (1, H) after reading the start symbol and the prime, and the per-layer state."""
    shown, start, context = _prefix(tokenizer, cfg, gen)
    prefix = torch.tensor([start + context], dtype=torch.long, device=model.head.weight.device)  # (1, P)
    out, state = model.outputs(prefix)
    return shown, out[:, -1], model.split_state(state)


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

    One loop for every model; what a token costs and how it is drawn is the
    source's (`_Plain`, `_Document`). The loop is the sampler's hot path (issue 16:
    within 10% of the bare step): a plain model's drawn id stays a tensor and is the
    next step's input, the output layer's product carries the temperature and the
    noise (sampler.py).
    """
    cfg.validate()
    model.eval()
    if gen is None:
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else new_seed())
    plain = model.context is None and model.ends is None
    source = _Plain(model, tokenizer, cfg, gen) if plain else _Document(model, tokenizer, cfg, gen, label, taus)
    if source.shown:
        yield source.shown
    stream = _Stream(tokenizer, cfg, eos_as)
    push, draw, step = stream.push, source.draw, source.step
    done = cfg.length <= 0
    pieces: list[str] = []  # text certain but not yet given out: pieces go out at most every FLUSH_S
    last = -math.inf
    while not done:
        i = draw()  # the next token: a (1,) tensor, or an id; None: the end model ended the document
        if i is None:
            pieces.append(stream.flush())
            break
        text, done = push(int(i))
        if text:
            pieces.append(text)
            if (now := time.perf_counter()) - last >= FLUSH_S:
                yield "".join(pieces)
                pieces.clear()
                last = now
        if not done:
            step(i)
    if pieces:
        yield "".join(pieces)


class _Plain:
    """A plain model's generation: the top layer's output carried from step to step,
    the next id drawn through the output layer (the sampler's head path)."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator):
        self.shown, self.top, self.layers = _start(model, tokenizer, cfg, gen)
        self._step, self._draw = model.step_top, Sampler(cfg.temperature, cfg.top_k, cfg.top_p, gen, model.head).ids_top

    def draw(self) -> Tensor:
        return self._draw(self.top)  # (1,): the next input as it is

    def step(self, i: Tensor) -> None:
        self.top, self.layers = self._step(i, self.layers)


@torch.inference_mode()
def generate_batch(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    n: int,
    gen: torch.Generator | None = None,
    eos_as: str = "\n",
    label: int | None = None,
) -> list[str]:
    """n samples from the same prime, run as one batch of n streams (a row leaves the
    batch when its sample ends): one model step a token for all of them. Each text starts
    with the prime, as generate()'s does. n = 1 gives generate()'s text for the same seed.
    A model conditioned on labels or with an end head samples its n texts one after another."""
    cfg.validate()
    model.eval()
    if gen is None:
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else new_seed())
    if n == 1 or model.context is not None or model.ends is not None:
        return ["".join(generate(model, tokenizer, cfg, gen, eos_as, label)) for _ in range(n)]
    shown, top, layers = _start(model, tokenizer, cfg, gen)
    top = top.expand(n, -1)  # (n, H)
    layers = [tuple(s.expand(n, *s.shape[1:]).contiguous() for s in ls) for ls in layers]
    streams = [_Stream(tokenizer, cfg, eos_as) for _ in range(n)]
    texts = [[shown] for _ in range(n)]
    rows = list(range(n))  # the sample each row of the batch holds
    device = top.device
    draw = Sampler(cfg.temperature, cfg.top_k, cfg.top_p, gen, model.head).rows_top
    while rows and cfg.length > 0:
        picked = draw(top)  # (B,)
        keep = []
        for r, (row, i) in enumerate(zip(rows, picked.tolist())):
            text, done = streams[row].push(i)
            texts[row].append(text)
            if not done:
                keep.append(r)
        if len(keep) < len(rows):
            if not keep:
                break
            sel = torch.tensor(keep, device=device)
            rows = [rows[r] for r in keep]
            picked = picked.index_select(0, sel)
            layers = [tuple(s.index_select(0, sel) for s in ls) for ls in layers]
        top, layers = model.step_top(picked, layers)
    return ["".join(t) for t in texts]


class _Document:
    """A conditioned or end-modelled generation (generate()'s source for such a model):
    where it stands in its document, the label it reads, whether the document has
    ended, the length left (length model)."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator, label: int | None,
                 taus: list[int] | None):  # fmt: skip
        self.model, self.gen, self.taus = model, gen, taus
        device = model.head.weight.device
        self.label = None if label is None else torch.tensor([label], device=device)
        self.kind = model.ends.kind if model.ends is not None else "eos"
        self.for_length = None if model.context is None else model.context.fill(self.label, torch.empty(1, device=device))
        self.ended, self.left = False, 0
        self.shown, start, context = _prefix(tokenizer, cfg, gen)
        self.eos, self.stop_at_eos = tokenizer.eos_id, cfg.stop_at_eos
        self.idx = torch.empty(1, dtype=torch.long, device=device)
        self._draw = Sampler(cfg.temperature, cfg.top_k, cfg.top_p, gen).one
        self.logits, self.layers = self.begin(start + context, len(context))

    def draw(self) -> int | None:
        if self.ended:  # --no-stop: on into a new document, its start symbol read next
            return None if self.stop_at_eos else self.eos
        return self._draw(self.logits)  # never the end token: masked

    def step(self, i: int) -> None:
        self.idx[0] = i
        self.logits, self.layers = self.read(self.idx, self.layers, i == self.eos)

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

    def read(self, idx: Tensor, layers: list, starts: bool) -> tuple[Tensor, list]:
        """Read one token (the start symbol of a new document when `starts`)."""
        remaining = None
        if self.kind == "length":
            self.left = self._tau(1) if starts else self.left - 1
            remaining = torch.tensor([self.left], device=idx.device)
        top, layers = self.model.step_top(idx, layers, self.label, remaining)
        return self._heads(top, real=not starts), layers



@torch.no_grad()
def beam_texts(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, width: int, eos_as: str = "\n") -> list[tuple[str, float]]:
    """The `width` most likely continuations of the prime (beam search, ranked by log P / length^α),
    best first, each as (the prime and its continuation, log P of the continuation). A continuation
    ends at the end-of-document token (unless cfg.stop_at_eos is off), a stop string, or cfg.length."""
    from .beam import beam_search

    cfg.validate()
    model.eval()
    device = model.head.weight.device
    eos = tokenizer.eos_id
    context = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
    prefix = ([eos] if eos is not None else []) + context or tokenizer.encode("\n", unknown="skip")
    if not prefix:
        raise TokenizerError("beam search needs a place to start: give --prime (this model has no documents and no newline).")
    state = model.init_state(1)
    if len(prefix) > 1:
        _, _, state = model(torch.tensor([prefix[:-1]], dtype=torch.long, device=device))

    def step(tokens: Tensor, layers: list) -> tuple[Tensor, list, None]:
        logits, layers = model.step_layers(tokens, layers)
        return torch.log_softmax(logits.float(), -1), layers, None

    def reorder(layers: list, rows: Tensor) -> list:
        return [tuple(s[rows] for s in layer) for layer in layers]

    hyps = beam_search(step, model.split_state(state), reorder, prefix[-1], eos if cfg.stop_at_eos else None, width,
                       max(cfg.length, 1), device=device)  # fmt: skip
    out = []
    for h in hyps:
        pieces: list[list[int]] = [[]]
        for i in h.ids:  # an end-of-document token inside (--no-stop) reads as eos_as
            pieces.append([]) if i == eos else pieces[-1].append(i)
        text = eos_as.join(tokenizer.decode(p) for p in pieces)[: cfg.length]
        cuts = [at for s in cfg.stop if (at := text.find(s)) >= 0]
        out.append((tokenizer.decode(context) + (text[: min(cuts)] if cuts else text), h.logp))
    return out


def sample_text(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator | None = None, eos_as: str = "\n",
                label: int | None = None, taus: list[int] | None = None) -> str:  # fmt: skip
    return "".join(generate(model, tokenizer, cfg, gen, eos_as, label, taus))
