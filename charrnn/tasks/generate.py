"""Generation: a token stream with carried state, and stop-symbol handling.

The prime text runs through the fused path once; every new token then costs one
`model.step()` with the state carried from the last, however long the text has
grown. Text is yielded as soon as it is certain: a tail as long as the longest
stop string (less one) is held back, because it might be the start of one.
Generation ends at the end-of-document token (unless told not to), at the first
stop string, and always at `length` generated characters.

`generate_batch` samples n texts as one batch of n streams (`charrnn sample --num
N`): the step of a small model costs little more for 32 rows than for one, so n
samples take far less than n times one. Its texts differ from n calls of
generate() with the same generator (the random numbers are drawn per batch).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

import torch
from torch import Tensor

from ..config import SampleConfig
from ..data.tokenizer import Tokenizer
from ..errors import TokenizerError
from ..models.lm import CharRNN


def eos_text(doc_sep: str | None) -> str:
    """How an end-of-document token reads when generation runs past it (--no-stop)."""
    return {None: "\n", "line": "\n", "file": "\n", "blank": "\n\n"}.get(doc_sep, f"\n{doc_sep}\n")


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


def distribution(logits: Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """The distribution a token is drawn from, over the last dimension of logits (..., V):
    softmax(logits / T) restricted to the k most likely and/or the smallest set with
    mass >= top_p (renormalised); at temperature 0, all the mass on the most likely."""
    logits = logits.detach().float().cpu()
    if temperature == 0:
        return torch.nn.functional.one_hot(torch.argmax(logits, -1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        probs, order = torch.sort(torch.softmax(logits, -1), dim=-1, descending=True)
        drop = torch.cumsum(probs, -1) - probs >= top_p  # mass before this token already reaches p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)
    return torch.softmax(logits, -1)


def pick(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, gen: torch.Generator) -> int:
    """One token id from logits (V,): greedy at temperature 0, else drawn from `distribution`."""
    return int(pick_rows(logits.view(1, -1), temperature, top_k, top_p, gen)[0])


def pick_rows(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, gen: torch.Generator) -> Tensor:
    """`pick` for each row of logits (B, V) -> ids (B,) on the CPU.

    The draw is torch.multinomial's own for one sample: argmax(p / q) with q ~ Exp(1),
    the same random numbers from `gen`, so a seed gives the text it always gave, at half
    the cost (multinomial checks its input first)."""
    if temperature == 0:
        return logits.detach().float().cpu().argmax(-1)
    probs = distribution(logits, temperature, top_k, top_p)
    q = torch.empty_like(probs).exponential_(1, generator=gen)
    return probs.div_(q).argmax(-1)


class _Stream:
    """One sample's text as tokens arrive: decoding, the end-of-document token, stop
    strings and the length limit. `push(id)` -> (text now certain, finished)."""

    def __init__(self, tokenizer: Tokenizer, cfg: SampleConfig, eos_as: str):
        self.cfg, self.eos, self.eos_as = cfg, tokenizer.eos_id, eos_as
        self.decoder = tokenizer.stream_decoder()
        self.hold = max((len(s) for s in cfg.stop), default=1) - 1
        self.pending, self.produced = "", 0  # text not yet given out; characters generated so far

    def push(self, i: int) -> tuple[str, bool]:
        cfg = self.cfg
        if i == self.eos and cfg.stop_at_eos:
            return self.flush(), True
        piece = self.eos_as if i == self.eos else self.decoder.push(i)
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


def _start(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator) -> tuple[str, Tensor, list[Any]]:
    """The printed prefix, the logits (1, V) after reading the start symbol and the prime, and the per-layer state."""
    device = model.head.weight.device
    eos = tokenizer.eos_id
    context = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
    shown = tokenizer.decode(context) if cfg.prime else ""
    start = [eos] if eos is not None else []
    if not start and not context:
        newline = tokenizer.encode("\n", unknown="skip")
        start = newline or [int(torch.randint(tokenizer.vocab_size, (1,), generator=gen))]
        if not newline:
            shown += tokenizer.decode(start)
    prefix = torch.tensor([start + context], dtype=torch.long, device=device)  # (1, P)
    logits, _, state = model(prefix)
    return shown, logits[:, -1], model.split_state(state)


@torch.inference_mode()
def generate(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    gen: torch.Generator | None = None,
    eos_as: str = "\n",
) -> Iterator[str]:
    """Yield the prime, then generated text in pieces as it becomes certain.

    Raises UnknownCharactersError for prime characters outside the vocabulary
    (unless cfg.unknown == "skip").
    """
    cfg.validate()
    model.eval()
    if gen is None:
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else new_seed())
    shown, logits, layers = _start(model, tokenizer, cfg, gen)
    if shown:
        yield shown
    logits = logits[0]  # (V,)
    stream = _Stream(tokenizer, cfg, eos_as)
    device = logits.device
    ids = torch.arange(tokenizer.vocab_size, device=device)  # ids[i : i + 1] is the next input, without a copy
    step = model.step_layers
    done = cfg.length <= 0
    while not done:
        i = pick(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)
        text, done = stream.push(i)
        if text:
            yield text
        if not done:
            logits, layers = step(ids[i : i + 1], layers)
            logits = logits[0]


@torch.inference_mode()
def generate_batch(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    n: int,
    gen: torch.Generator | None = None,
    eos_as: str = "\n",
) -> list[str]:
    """n samples from the same prime, run as one batch of n streams (a row leaves the
    batch when its sample ends): one model step a token for all of them. Each text starts
    with the prime, as generate()'s does. n = 1 gives generate()'s text for the same seed."""
    cfg.validate()
    model.eval()
    if gen is None:
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else new_seed())
    if n == 1:
        return ["".join(generate(model, tokenizer, cfg, gen, eos_as))]
    shown, logits, layers = _start(model, tokenizer, cfg, gen)
    logits = logits.expand(n, -1)  # (n, V)
    layers = [tuple(s.expand(n, *s.shape[1:]).contiguous() for s in ls) for ls in layers]
    streams = [_Stream(tokenizer, cfg, eos_as) for _ in range(n)]
    texts = [[shown] for _ in range(n)]
    rows = list(range(n))  # the sample each row of the batch holds
    device = logits.device
    while rows and cfg.length > 0:
        picked = pick_rows(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)  # (B,)
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
            picked = picked[keep]
            layers = [tuple(s.index_select(0, sel) for s in ls) for ls in layers]
        logits, layers = model.step_layers(picked.to(device), layers)
    return ["".join(t) for t in texts]


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


def sample_text(model: CharRNN, tokenizer: Tokenizer, cfg: SampleConfig, gen: torch.Generator | None = None, eos_as: str = "\n") -> str:
    return "".join(generate(model, tokenizer, cfg, gen, eos_as))
