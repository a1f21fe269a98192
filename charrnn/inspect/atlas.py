"""The atlas: what every unit of every layer and signal tracks, scored against annotations.

Karpathy, Johnson and Fei-Fei (2015) found cells in character LSTMs that track
quotes, the position in a line and the depth of brackets. The atlas looks for
such units in any model: a long text goes through the model in parallel
streams (stream.py) and every unit is scored against every annotation
(annotations.py):

- a yes/no annotation by AUC, the chance that a position where it holds
  outscores one where it does not (Mann-Whitney U over ranks, every unit in one
  product); a unit lower inside scores 1 - AUC, reported with its direction. The
  ranks come from a uniform random sample of positions (SAMPLE rows, so memory
  stays bounded however long the text is; its standard error is about
  0.3/sqrt(positives) at worst);
- a count by |Pearson r|, from running sums over every position.

The baseline: the same scores with each annotation circularly shifted half the
text against the activations. Shifting keeps both sides as they are (the
annotation's base rate and run lengths, each unit's own slowness) and breaks only
their alignment, so it measures what the best of thousands of units scores by
chance against something as bursty as the annotation. Shuffling the text instead
would show the model text it never saw (its states leave their usual range) and
change the annotation itself. An annotation is explained when its best unit
reaches EXPLAINED and beats the baseline by MARGIN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..models import registry
from .annotations import AUC, Annotation, informative
from .stream import Chunk, chunks, layout, windows

SAMPLE = 16384  # positions whose ranks give the AUCs
EXPLAINED = {AUC: 0.8, "r": 0.5}  # a best unit at least this good explains its annotation...
MARGIN = 0.1  # ...when it also beats the shifted baseline by this much
TOP = 3  # units listed per annotation
EXCERPT = 72  # tokens in an excerpt


@dataclass(frozen=True)
class Unit:
    what: str
    layer: int
    unit: int

    def __str__(self) -> str:
        return f"{self.what} {self.layer}:{self.unit}"


@dataclass(frozen=True)
class Scored:
    unit: Unit
    score: float  # AUC of the better direction, or |r|
    sign: int  # +1: higher where the annotation holds (or grows); -1: lower


@dataclass(frozen=True)
class Excerpt:
    start: int  # position of the first token in the text read
    tokens: tuple[str, ...]
    values: tuple[float, ...]  # the best unit's signal at each token
    marks: tuple[float, ...]  # the annotation at each token


@dataclass(frozen=True)
class Finding:
    name: str
    about: str
    measure: str  # "auc" or "r"
    rate: float  # share of positions where it holds (auc), or its mean (r)
    best: tuple[Scored, ...]
    baseline: float  # the best score over all units with the annotation shifted
    explained: bool
    excerpt: Excerpt | None = None


@dataclass(frozen=True)
class Atlas:
    cell: str
    layers: int
    hidden: int
    signals: tuple[str, ...]
    tokens: int  # positions scored
    streams: int
    sample: int  # positions in the AUC sample
    findings: tuple[Finding, ...]
    unexplained: dict[str, list[int]]  # signal -> per layer, how many units explain no annotation
    quiet: tuple[Unit, ...]  # the liveliest of those units (largest spread)
    saturation: dict[str, np.ndarray]  # signal -> (L, H, 2): share of time below / above registry.THRESHOLDS
    thresholds: dict[str, tuple[float, float]]
    seconds: float
    cpu_seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def units(self) -> int:
        return len(self.signals) * self.layers * self.hidden


class _Sums:
    """Running sums for |Pearson r| between every unit (n, U) and count annotations (n, A)."""

    def __init__(self) -> None:
        self.n = 0
        self.x0 = self.y0 = None

    def add(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        if self.x0 is None:  # shift by the first chunk's means: sums of squares without cancellation
            self.x0, self.y0 = X.mean(0), Y.mean(0)
            U, A = X.shape[1], Y.shape[1]
            self.sx, self.sxx = torch.zeros(U, dtype=torch.float64), torch.zeros(U, dtype=torch.float64)
            self.sy, self.syy = torch.zeros(A, dtype=torch.float64), torch.zeros(A, dtype=torch.float64)
            self.sxy = torch.zeros(A, U, dtype=torch.float64)
        x, y = X - self.x0, Y - self.y0
        self.n += len(X)
        self.sx += x.sum(0).double()
        self.sxx += (x * x).sum(0).double()
        self.sy += y.sum(0).double()
        self.syy += (y * y).sum(0).double()
        self.sxy += (y.t() @ x).double()  # (A, U)

    def r(self) -> torch.Tensor:
        n = max(self.n, 1)
        cov = self.sxy / n - (self.sy / n)[:, None] * (self.sx / n)[None, :]
        vx = (self.sxx / n - (self.sx / n) ** 2).clamp_min(0)
        vy = (self.syy / n - (self.sy / n) ** 2).clamp_min(0)
        den = (vy[:, None] * vx[None, :]).sqrt()
        return torch.where(den > 1e-12, cov / den.clamp_min(1e-300), torch.zeros_like(cov))  # (A, U)

    def std(self) -> torch.Tensor:
        n = max(self.n, 1)
        return (self.sxx / n - (self.sx / n) ** 2).clamp_min(0).sqrt()


class _Sample:
    """A uniform random sample of `size` positions out of N, drawn before reading, in
    random order; chunks fill in their values as they pass."""

    def __init__(self, size: int, N: int, U: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.pos = rng.permutation(N)[: min(size, N)]  # (S,) random order: a stable sort breaks ties at random
        self.slot = np.full(N, -1, np.int64)
        self.slot[self.pos] = np.arange(len(self.pos))
        self.X = torch.zeros(len(self.pos), U, dtype=torch.float16)  # fp16: 2 bytes a value, ranks barely move

    def add(self, X: torch.Tensor, pos: np.ndarray) -> None:
        slot = self.slot[pos]
        hit = slot >= 0
        if hit.any():
            self.X[torch.as_tensor(slot[hit])] = X[torch.as_tensor(hit)].to(torch.float16)

    def auc(self, M: np.ndarray) -> torch.Tensor:
        """AUC of every unit for every yes/no column of M (S, A): -> (A, U). Rows are in
        random order, so a stable sort breaks ties at random (as counting them half does, on average)."""
        S = len(self.X)
        m = torch.as_tensor(M, dtype=torch.float32)  # (S, A)
        n1 = m.sum(0)  # (A,)
        n0 = S - n1
        sums = torch.zeros(m.shape[1], self.X.shape[1], dtype=torch.float64)
        ramp = torch.arange(1, S + 1, dtype=torch.float32) - (S + 1) / 2  # centred ranks: float32 sums stay exact enough
        for a in range(0, self.X.shape[1], 256):  # 256 units at a time, each a contiguous row of S values
            block = self.X[:, a : a + 256].t().float().contiguous()  # (256, S)
            order = torch.argsort(block, dim=1, stable=True)
            ranks = torch.empty_like(block).scatter_(1, order, ramp.expand_as(block))
            sums[:, a : a + 256] = (ranks @ m).t().double()  # (A, 256)
        # sum of the positives' ranks, centred: sum r - n1 (S+1)/2; U = sum r - n1 (n1+1)/2
        u = sums + (n1 * (S + 1) / 2 - n1 * (n1 + 1) / 2).double()[:, None]
        return u / (n1 * n0).double().clamp_min(1)[:, None]


def _unit(flat: int, signals: Sequence[str], L: int, H: int) -> Unit:
    n, rest = divmod(int(flat), L * H)
    k, u = divmod(rest, H)
    return Unit(signals[n], k, u)


def _flat(chunk: Chunk, signals: Sequence[str]) -> torch.Tensor:
    """(n, U): every unit of every signal, signal-major then layer-major."""
    return torch.cat([chunk.signals[n].reshape(len(chunk.pos), -1) for n in signals], 1)


def run(model, token_annotations: list[tuple[Annotation, np.ndarray]], ids: np.ndarray, tokens: Sequence[str],  # type: ignore[no-untyped-def]
        start_id: int | None = None, streams: int | None = None, sample: int = SAMPLE, seed: int = 0,
        top: int = TOP, consumers: Sequence = ()) -> Atlas:  # fmt: skip
    """The atlas of `model` over `ids` (N,). token_annotations pairs each annotation with its
    value per token (N,). `consumers` get every chunk too (a search, say)."""
    t0, c0 = time.perf_counter(), time.process_time()
    kind = model.kind
    signals = kind.signal_names
    L, H = model.core.num_layers, model.core.hidden_size
    N = len(ids)
    shift = N // 2
    anns = [(a, v) for a, v in token_annotations if len(v) > 1 and (v != v[0]).any()]
    yes = [(a, v) for a, v in anns if a.measure == AUC]
    counts = [(a, v) for a, v in anns if a.measure != AUC]
    Ycount = np.stack([v for _, v in counts], 1).astype(np.float32) if counts else np.zeros((N, 0), np.float32)  # (N, Ac)
    Ycount = np.concatenate([Ycount, np.roll(Ycount, shift, 0)], 1)  # true, then shifted
    sums, smp = _Sums(), _Sample(sample, N, len(signals) * L * H, seed)
    sat_names = [n for n in signals if n in set(_saturating(model.kind))]
    below = {n: torch.zeros(L, H, dtype=torch.int64) for n in sat_names}
    above = {n: torch.zeros(L, H, dtype=torch.int64) for n in sat_names}
    for ch in chunks(model, ids, streams=streams, start_id=start_id):
        X = _flat(ch, signals)  # (n, U)
        sums.add(X, torch.as_tensor(Ycount[ch.pos]))
        smp.add(X, ch.pos)
        for n in sat_names:
            lo, hi = registry.THRESHOLDS[kind.range_of(n)]
            v = ch.signals[n]  # (n, L, H)
            below[n] += (v < lo).sum(0)
            above[n] += (v > hi).sum(0)
        for c in consumers:
            c.add(ch)
    scores: list[tuple[Annotation, np.ndarray, np.ndarray, np.ndarray]] = []  # annotation, score (U,), sign (U,), shifted (U,)
    if yes:
        pos = smp.pos
        M = np.stack([v[pos] for _, v in yes] + [v[(pos - shift) % N] for _, v in yes], 1)
        ok = (M.sum(0) > 0) & (M.sum(0) < len(pos))
        auc = smp.auc(M).numpy()
        A = len(yes)
        for j, (a, _) in enumerate(yes):
            if not (ok[j] and ok[A + j]):
                continue
            s, b = auc[j], auc[A + j]
            scores.append((a, np.maximum(s, 1 - s), np.where(s >= 0.5, 1, -1), np.maximum(b, 1 - b)))
    if counts:
        r = sums.r().numpy()
        A = len(counts)
        for j, (a, _) in enumerate(counts):
            scores.append((a, np.abs(r[j]), np.where(r[j] >= 0, 1, -1), np.abs(r[A + j])))
    order = {a.name: i for i, (a, _) in enumerate(anns)}
    scores.sort(key=lambda s: order[s[0].name])
    findings, explains = [], np.zeros(len(signals) * L * H, bool)
    for a, s, sign, shifted in scores:
        best = np.argsort(-s, kind="stable")[:top]
        base = float(shifted.max())
        bar = max(EXPLAINED[a.measure if a.measure == AUC else "r"], base + MARGIN)
        explains |= s >= bar
        rate = float(np.mean([v for b, v in anns if b is a][0]))
        findings.append(Finding(a.name, a.about, a.measure, rate,
                                tuple(Scored(_unit(j, signals, L, H), float(s[j]), int(sign[j])) for j in best),
                                base, bool(s[best[0]] >= bar)))  # fmt: skip
    findings = _with_excerpts(model, findings, {a.name: v for a, v in anns}, ids, tokens, start_id)
    std = sums.std().numpy()
    quiet_idx = [int(j) for j in np.argsort(-std, kind="stable") if not explains[j]][:10]
    unexplained = {n: [int((~explains.reshape(len(signals), L, H)[i, k]).sum()) for k in range(L)] for i, n in enumerate(signals)}
    n = max(sums.n, 1)
    sat = {k: torch.stack([below[k], above[k]], -1).numpy() / n for k in sat_names}
    B, _ = layout(N, streams)
    return Atlas(
        model.cfg.cell, L, H, tuple(signals), sums.n, B, len(smp.pos), tuple(findings), unexplained,
        tuple(_unit(j, signals, L, H) for j in quiet_idx), sat,
        {k: registry.THRESHOLDS[kind.range_of(k)] for k in sat_names},
        time.perf_counter() - t0, time.process_time() - c0,
    )  # fmt: skip


def _saturating(kind: registry.Kind) -> tuple[str, ...]:
    """The gates, or for a kind without any its tanh-bounded state (as stats.saturating)."""
    return kind.gates or tuple(n for n in kind.state if kind.range_of(n) == registry.TANH)


def _with_excerpts(model, findings: list[Finding], values: dict[str, np.ndarray], ids: np.ndarray,  # type: ignore[no-untyped-def]
                   tokens: Sequence[str], start_id: int | None) -> list[Finding]:  # fmt: skip
    """Each finding with a short excerpt where its annotation changes, coloured by its best unit."""
    N = len(ids)
    spans = []
    for f in findings:
        v = values[f.name]
        change = np.flatnonzero(v[1:] != v[:-1]) + 1
        later = change[change >= min(N // 4, 200)]
        at = int(later[0] if len(later) else (change[0] if len(change) else 0))
        a = max(0, min(at - EXCERPT // 4, N - EXCERPT))
        spans.append((a, min(N, a + EXCERPT)))
    traced = windows(model, ids, spans, start_id=start_id)
    out = []
    for f, (a, b), sig in zip(findings, spans, traced):
        u = f.best[0].unit
        vals = sig[u.what][:, u.layer, u.unit]
        ex = Excerpt(a, tuple(tokens[a:b]), tuple(float(x) for x in vals), tuple(float(x) for x in values[f.name][a:b]))
        out.append(Finding(f.name, f.about, f.measure, f.rate, f.best, f.baseline, f.explained, ex))
    return out
