"""Scoring a split: nats per token and bits per character, with carried state."""

from __future__ import annotations

import math
from typing import Any

import torch

from . import distributed
from .batches import eval_batches
from .hardware import autocast
from .model import CharRNN

LN2 = math.log(2.0)


def sum_dtype(device: torch.device) -> torch.dtype:
    """Long sums in float64, except on Apple's MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


@torch.inference_mode()
def evaluate(
    model: CharRNN,
    ids: Any,
    char_lengths: torch.Tensor,
    max_tokens: int,
    streams: int,
    seq_len: int,
    eos_id: int | None,
    device: torch.device,
    amp: torch.dtype | None = None,
    dist: distributed.Dist = distributed.SINGLE,
) -> tuple[float, float, int, float]:
    """(nats per token, bits per character, tokens, characters) over a split.

    The split is read as `streams` contiguous streams with the state carried along
    each, as char-rnn scores it (a stream starts cold once, not every window).
    With several processes each rank scores its share of the streams and the
    sums are added up, so every rank returns the same numbers.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=sum_dtype(device), device=device)  # nats, characters, tokens
    state = None
    for x, y in eval_batches(ids, max_tokens, streams * dist.world, seq_len):
        rows = slice(dist.rank * streams, (dist.rank + 1) * streams)
        x = torch.from_numpy(x[rows]).to(device)
        y = torch.from_numpy(y[rows]).to(device)
        if x.numel() == 0:
            continue
        reset = (x == eos_id) if eos_id is not None else None
        with autocast(device, amp):
            logits, _, state = model(x, state, reset=reset)
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
        sums[0] += nll.to(sums.dtype)
        sums[1] += char_lengths[y].sum()
        sums[2] += y.numel()
    model.train(was_training)
    total, chars, n = distributed.sum_(dist, sums).tolist()
    if n == 0:
        return math.nan, math.nan, 0, 0.0
    return total / n, total / max(chars, 1e-9) / LN2, int(n), chars
