"""Statistics over a traced text: saturation, the units that track a pattern,
predictions, and the rate at which a gradient fades through time. Plain numpy
over `trace.Activations`; nothing here runs a model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from ..models import registry

UNIT_NAMES = {"tau": "τ"}  # how the per-unit constants of Activations.units read

if TYPE_CHECKING:  # numpy only here: the TUI's colours use this module without torch
    from .trace import Activations


def saturating(cell: str, available: Iterable[str]) -> tuple[str, ...]:
    """The signals whose saturation tells something: a kind's gates, or where it has
    none, its tanh-bounded state (h = tanh(a) of a vanilla RNN), where tanh's gradient vanishes."""
    kind = registry.KINDS.get(cell)
    if kind is None:
        return ()
    names = kind.gates or tuple(n for n in kind.state if kind.range_of(n) == registry.TANH)
    return tuple(n for n in names if n in set(available))


def fractions(values: np.ndarray, range_: str) -> np.ndarray:
    """values (..., T, H) -> (..., H, 2): the fraction of timesteps each unit spends
    beyond the low and the high threshold of its range (registry.THRESHOLDS)."""
    low, high = registry.THRESHOLDS[range_]
    return np.stack([(values < low).mean(axis=-2), (values > high).mean(axis=-2)], axis=-1)


def saturation(acts: Activations) -> dict[str, np.ndarray]:
    """name -> (L, H, 2) for the signals that saturate (see `saturating`): gates shut
    (< 0.1) and open (> 0.9), a tanh state beyond -0.9 and 0.9."""
    return {n: fractions(acts.signals[n], registry.range_of(acts.cell, n)) for n in saturating(acts.cell, acts.signals)}


def unit_values(acts: Activations, what: str, layer: int, unit: int) -> np.ndarray:
    """(T,) one unit's signal along the text; clear errors for names and indices that do not exist."""
    if what not in acts.signals:
        raise ConfigError(f"the {acts.cell} kind has no signal {what!r}; choose one of {', '.join(acts.signals)}.")
    if not 0 <= layer < acts.layers:
        raise ConfigError(f"--layer {layer} is out of range: this model has layers 0 to {acts.layers - 1} (0-based).")
    if not 0 <= unit < acts.hidden:
        raise ConfigError(f"--unit {unit} is out of range: each layer has units 0 to {acts.hidden - 1} (0-based).")
    return acts.signals[what][layer, :, unit]


def busiest_unit(acts: Activations, what: str, layer: int) -> int:
    """The unit whose signal varies most along the text: a sensible one to look at first."""
    unit_values(acts, what, layer, 0)
    return int(np.argmax(acts.signals[what][layer].std(axis=0)))


def match_mask(acts: Activations, pattern: str) -> np.ndarray:
    """(T,) True for the tokens with a character inside a match of `pattern` in the
    text (inside its first group, if it has one)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"--find '{pattern}' is not a valid regular expression ({e}).") from None
    chars = np.zeros(len(acts.text) + 1, dtype=np.int64)  # +1 marks where a span starts, -1 where it ends
    for m in rx.finditer(acts.text):
        a, b = m.span(1) if rx.groups and m.start(1) >= 0 else m.span()
        if b > a:
            chars[a] += 1
            chars[b] -= 1
    inside_char = np.cumsum(chars)[:-1] > 0  # (N,)
    offsets = acts.offsets if acts.offsets is not None else np.arange(len(acts.ids) + 1)
    cs = np.concatenate([[0], np.cumsum(inside_char)])
    inside = cs[offsets[1:]] - cs[offsets[:-1]] > 0  # (T,) some character of the token is inside
    if not inside.any():
        raise ConfigError(f"--find '{pattern}' matches nothing in the text; give a text where it matches somewhere.")
    if inside.all():
        raise ConfigError(f"--find '{pattern}' matches the whole text; nothing is left outside to compare with.")
    return inside


def roc_auc(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Column-wise ROC AUC of values (T, N) as a score for `inside` (T,) bool: the
    chance that a position inside outscores one outside (ties count half)."""
    T = values.shape[0]
    order = np.argsort(values, axis=0, kind="stable")
    v = np.take_along_axis(values, order, 0)  # (T, N) sorted
    pos = np.broadcast_to(np.arange(T)[:, None], v.shape)
    starts = np.ones(v.shape, dtype=bool)
    starts[1:] = v[1:] != v[:-1]
    ends = np.ones(v.shape, dtype=bool)
    ends[:-1] = v[1:] != v[:-1]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends, pos, T - 1)[::-1], axis=0)[::-1]
    ranks = np.empty(v.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, 0)  # tie-averaged ranks, 1-based
    n1, n0 = int(inside.sum()), int((~inside).sum())
    return (ranks[inside].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


@dataclass(frozen=True)
class UnitScore:
    what: str
    layer: int
    unit: int
    score: float  # 2 AUC - 1 in [-1, 1]: +1 higher at every position inside, -1 lower inside
    auc: float
    smd: float  # standardized mean difference, (mean inside - mean outside) / pooled std
    mean_in: float
    mean_out: float


def find_units(acts: Activations, inside: np.ndarray, what: Sequence[str] | None = None, top: int = 10) -> list[UnitScore]:
    """The units whose signal best separates positions inside (True) from outside,
    ranked by |2 AUC - 1| (ties by |standardized mean difference|)."""
    names = list(what) if what else list(acts.signals)
    for n in names:
        unit_values(acts, n, 0, 0)
    L, H = acts.layers, acts.hidden
    cols = [acts.signals[n].transpose(1, 0, 2).reshape(-1, L * H) for n in names]  # (T, L*H) each, layer-major
    X = np.concatenate(cols, axis=1).astype(np.float64)  # (T, N)
    auc = roc_auc(X, inside)
    a, b = X[inside], X[~inside]
    ss = ((a - a.mean(axis=0)) ** 2).sum(axis=0) + ((b - b.mean(axis=0)) ** 2).sum(axis=0)
    pooled = np.sqrt(ss / max(len(X) - 2, 1))  # (N,) pooled standard deviation
    diff = a.mean(axis=0) - b.mean(axis=0)
    smd = np.divide(diff, pooled, out=np.zeros_like(diff), where=pooled > 1e-12)
    score = 2 * auc - 1
    best = np.lexsort((-np.abs(smd), -np.abs(score)))[:top]
    out = []
    for j in best:
        n, rest = divmod(int(j), L * H)
        k, u = divmod(rest, H)
        out.append(
            UnitScore(names[n], k, u, float(score[j]), float(auc[j]), float(smd[j]), float(a[:, j].mean()), float(b[:, j].mean()))
        )
    return out


@dataclass(frozen=True)
class Prediction:
    id: int
    token: str
    prob: float


def position(acts: Activations, at: int) -> int:
    T = len(acts.ids)
    if not 0 <= at < T:
        raise ConfigError(f"--at {at} is out of range: the text has positions 0 to {T - 1} (0-based).")
    return at


def top_predictions(acts: Activations, at: int, k: int = 5) -> list[Prediction]:
    """The k most likely next tokens after reading the text up to and including position `at`."""
    p = acts.probs[position(acts, at)]  # (V,)
    best = np.argsort(-p, kind="stable")[: max(1, k)]
    return [Prediction(int(i), acts.vocab[i] if acts.vocab else str(int(i)), float(p[i])) for i in best]


def next_token_probs(acts: Activations) -> np.ndarray:
    """(T,) the probability the model gave each token before reading it (nan for the
    first, which nothing in the text predicts)."""
    p = np.full(len(acts.ids), np.nan, dtype=np.float32)
    p[1:] = acts.probs[np.arange(len(acts.ids) - 1), acts.ids[1:]]
    return p


def decay_per_step(norms: np.ndarray) -> float | None:
    """The geometric rate at which a gradient norm series (T,), indexed by position
    (the loss at the end), changes per step back in time: the slope of log |g|
    against T - t, fitted over every step back but the first. Below 1 vanishing,
    above 1 exploding. None when fewer than two usable points remain."""
    g = np.asarray(norms, dtype=np.float64)[::-1][1:]  # by distance, from 1
    d = np.arange(1, len(g) + 1)
    keep = g > 0
    if keep.sum() < 2:
        return None
    slope = np.polyfit(d[keep], np.log(g[keep]), 1)[0]
    return float(np.exp(slope))



def reach(norms: np.ndarray, factor: float = 1000.0) -> int | None:
    """How many steps back a gradient norm series (T,), indexed by position (the loss at
    the end), has first fallen `factor` times below its value at the end: the distance
    d >= 1 with |g(T - d)| <= |g(T)| / factor. None when it never does within the series
    (or the series is too short, or zero at the end)."""
    g = np.asarray(norms, dtype=np.float64)[::-1]  # by distance, from 0
    if len(g) < 2 or not g[0] > 0:
        return None
    below = np.flatnonzero(g[1:] <= g[0] / factor)
    return int(below[0]) + 1 if len(below) else None
