"""Generation: a token stream with carried state, and stop-symbol handling.

The prime text runs through the fused path once; every new token then costs one
`model.step()` with the state carried from the last, however long the text has
grown. Text is yielded as soon as it is certain: a tail as long as the longest
stop string (less one) is held back, because it might be the start of one.
Generation ends at the end-of-document token (unless told not to), at the first
stop string, and always at `length` generated characters.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

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
    prefix = torch.tensor([start + context], dtype=torch.long, device=device)  # (1, P)
    logits, _, state = model(prefix)
    logits = logits[0, -1]  # (V,)
    layers = model.split_state(state)

    decoder = tokenizer.stream_decoder()
    hold = max((len(s) for s in cfg.stop), default=1) - 1
    pending, produced = "", 0  # text not yet yielded; characters generated so far
    idx = torch.empty(1, dtype=torch.long, device=device)
    while produced < cfg.length:
        i = pick(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)
        if i == eos and cfg.stop_at_eos:
            break
        piece = eos_as if i == eos else decoder.push(i)
        piece = piece[: cfg.length - produced]
        produced += len(piece)
        pending += piece
        if cfg.stop:
            new = len(pending) - len(piece)  # a new match must end inside the new piece
            hits = [at for s in cfg.stop if (at := pending.find(s, max(0, new - len(s) + 1))) >= 0]
            if hits:
                pending = pending[: min(hits)]
                break
        if len(pending) > hold:
            yield pending[: len(pending) - hold]
            pending = pending[len(pending) - hold :]
        idx[0] = i
        logits, layers = model.step_layers(idx, layers)
        logits = logits[0]
    if pending:
        yield pending


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
