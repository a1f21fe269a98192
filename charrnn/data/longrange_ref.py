"""The long-range generators' exact figures on a given text (data/longrange.py): what the
generator itself scores on it, and what a model remembering k characters cannot beat."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Reference:
    perfect: float  # bits/char of the generator itself on the text
    memory: dict[int, float]  # k -> bits/char a model remembering k characters cannot beat on it
    chars: int  # characters scored: all but the first


def reference(gen: Any, text: str, memory: Sequence[int] = (32,)) -> Reference:
    """The generator's bits/char on a text of its own (documents one a line), and what a
    k-character memory cannot beat on it, for each k in `memory`. Like charrnn's
    evaluation of a split, every character but the first is scored."""
    bits, dist = gen.walk(text)
    bits, dist = bits[1:], dist[1:]
    total, n = float(bits.sum()), max(len(bits), 1)
    guess = math.log2(gen.choices)
    return Reference(
        perfect=total / n,
        memory={k: (total + int((dist > k).sum()) * guess) / n for k in memory},
        chars=len(bits),
    )


def text_from_ids(ids: Any, tokenizer: Any) -> str:
    """A corpus split back as text, its end-of-document ids as newlines (as the generators wrote it)."""
    ids = np.asarray(ids).astype(np.int64)
    eos = tokenizer.eos_id
    if eos is None:
        return tokenizer.decode(ids.tolist())
    cuts = np.flatnonzero(ids == eos)
    pieces = np.split(ids, cuts)
    return "\n".join(tokenizer.decode((p[1:] if i else p).tolist()) for i, p in enumerate(pieces))
