"""Search across a text by example, as LSTMVis does (Strobelt et al.): select a span
where you believe something holds, take the units that are on throughout it and off
in a margin around it, and find the other places where those units are on together.

"On" is a signal's value at or above a threshold (shown, adjustable): by default 0.3
for a tanh or unbounded signal (LSTMVis's default for hidden states) and 0.5 for a
gate. A match is a run of positions where at least `share` of the chosen units are
on at once; matches rank by how many are on, then by how close their length is to
the selection's. Plain numpy over chunks from stream.py; no export, no config file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..models import registry
from .stream import Chunk, chunks, windows

MARGIN = 2  # positions each side of the selection where a chosen unit must be off
TOP = 10  # matches listed
CONTEXT = 24  # tokens of context each side of a match's excerpt


def default_threshold(cell: str, what: str) -> float:
    return 0.5 if registry.range_of(cell, what) == registry.GATE else 0.3


@dataclass(frozen=True)
class Match:
    start: int  # the run of positions [start, end)
    end: int
    share: float  # mean share of the chosen units on over the run
    before: str  # excerpt: context, the match, context
    text: str
    after: str


@dataclass(frozen=True)
class Search:
    span: tuple[int, int]
    what: str
    threshold: float
    margin: int
    share: float
    units: tuple[tuple[int, int], ...]  # (layer, unit) of the chosen units
    matches: tuple[Match, ...]
    selected: str  # the selection's own text


def parse_span(spec: str, n: int) -> tuple[int, int]:
    """'START:END' (0-based, END exclusive) -> (start, end) within a text of n positions."""
    a, colon, b = spec.partition(":")
    try:
        start, end = int(a), int(b)
    except ValueError:
        raise ConfigError(f"--select takes START:END positions, such as --select 120:135, not {spec!r}.") from None
    if not colon or not 0 <= start < end <= n:
        raise ConfigError(f"--select {spec} is outside the text read: give 0 <= START < END <= {n}.")
    return start, end


def choose(values: np.ndarray, span: tuple[int, int], lo: int, threshold: float, margin: int) -> list[tuple[int, int]]:
    """The units on (>= threshold) at every position of span and off at every position of
    the margin around it. values (P, L, H) covers positions lo .. lo + P - 1."""
    a, b = span[0] - lo, span[1] - lo
    on = (values[a:b] >= threshold).all(0)  # (L, H)
    around = np.concatenate([values[max(0, a - margin) : a], values[b : b + margin]])
    if len(around):
        on &= (around < threshold).all(0)
    return [(int(k), int(u)) for k, u in zip(*np.nonzero(on))]


class Counter:
    """A chunk consumer: how many of the chosen units are on at each position."""

    def __init__(self, n: int, what: str, units: Sequence[tuple[int, int]], threshold: float):
        self.count = np.zeros(n, np.int32)
        self.what, self.threshold = what, threshold
        self.layers = np.array([k for k, _ in units], np.int64)
        self.units = np.array([u for _, u in units], np.int64)

    def add(self, ch: Chunk) -> None:
        if len(self.units):
            v = ch.signals[self.what][:, self.layers, self.units].numpy()  # (n, K)
            self.count[ch.pos] = (v >= self.threshold).sum(1)


def matches(count: np.ndarray, k: int, span: tuple[int, int], tokens: Sequence[str], share: float = 1.0, top: int = TOP) -> list[Match]:
    """Runs where at least ceil(share k) of k units are on, the selection itself left out, best first."""
    if k == 0:
        return []
    need = max(1, math.ceil(share * k - 1e-9))
    hit = np.concatenate([[False], count >= need, [False]])
    edges = np.flatnonzero(hit[1:] != hit[:-1])
    runs = [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e <= span[0] or s >= span[1]]
    width = span[1] - span[0]
    ranked = sorted(runs, key=lambda r: (-float(count[r[0] : r[1]].mean()), abs((r[1] - r[0]) - width), r[0]))[:top]
    out = []
    for s, e in ranked:
        out.append(Match(s, e, float(count[s:e].mean()) / k, "".join(tokens[max(0, s - CONTEXT) : s]), "".join(tokens[s:e]),
                         "".join(tokens[e : e + CONTEXT])))  # fmt: skip
    return out


def prepare(model, ids: np.ndarray, span: tuple[int, int], what: str, threshold: float | None = None,  # type: ignore[no-untyped-def]
            margin: int = MARGIN, start_id: int | None = None) -> tuple[list[tuple[int, int]], float]:  # fmt: skip
    """The chosen units for a selection (read with the context before it), and the threshold used."""
    if what not in model.kind.signal_names:
        raise ConfigError(f"the {model.cfg.cell} kind has no signal {what!r}; choose one of {', '.join(model.kind.signal_names)}.")
    th = default_threshold(model.cfg.cell, what) if threshold is None else threshold
    lo, hi = max(0, span[0] - margin), min(len(ids), span[1] + margin)
    (sig,) = windows(model, ids, [(lo, hi)], start_id=start_id)
    return choose(sig[what], span, lo, th, margin), th


def finish(counter: Counter, units: list[tuple[int, int]], span: tuple[int, int], tokens: Sequence[str], what: str,
           threshold: float, margin: int, share: float) -> Search:  # fmt: skip
    found = matches(counter.count, len(units), span, tokens, share)
    return Search(span, what, threshold, margin, share, tuple(units), tuple(found), "".join(tokens[span[0] : span[1]]))


def search(model, ids: np.ndarray, tokens: Sequence[str], span: tuple[int, int], what: str = "h",  # type: ignore[no-untyped-def]
           threshold: float | None = None, margin: int = MARGIN, share: float = 1.0, start_id: int | None = None,
           streams: int | None = None) -> Search:  # fmt: skip
    """The whole search on its own: choose the units, read the text once, rank the matches."""
    units, th = prepare(model, ids, span, what, threshold, margin, start_id)
    counter = Counter(len(ids), what, units, th)
    if units:
        for ch in chunks(model, ids, streams=streams, start_id=start_id):
            counter.add(ch)
    return finish(counter, units, span, tokens, what, th, margin, share)
