"""Looking inside: activations, gate saturation and gradients through time, as numpy.

Everything here runs the per-step path (`CharRNN.trace`) on one short text and
hands back plain arrays, so the inspector, the TUI and other tools read the same
numbers. A text is read the way sampling reads it: for a model with documents,
from the start-of-document state (the end-of-document token fed first, not shown).

Indices are 0-based, as in PyTorch: layer 0 is nearest the input, position t is
the t-th token of the text, and a signal at t is the value after reading token t.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .errors import ConfigError, TokenizerError
from .model import CharRNN
from .tokenizer import Tokenizer


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


def _ids(tokenizer: Tokenizer, text: str, unknown: str) -> list[int]:
    ids = tokenizer.encode(text, unknown=unknown)
    if not ids:
        raise TokenizerError("the text is empty; give a few characters the model knows.")
    return ids


def _token_texts(tokenizer: Tokenizer, ids: list[int]) -> tuple[str, ...]:
    show = getattr(tokenizer, "token_text", None)
    return tuple(show(i) if show else tokenizer.decode([i]) for i in ids)


def _context(model: CharRNN, tokenizer: Tokenizer, ids: list[int]) -> torch.Tensor:
    start = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    return torch.tensor([start + ids], dtype=torch.long, device=model.head.weight.device)  # (1, S+T)


def activations(model: CharRNN, tokenizer: Tokenizer, text: str, unknown: str = "error") -> Activations:
    ids = _ids(tokenizer, text, unknown)
    skip = int(tokenizer.eos_id is not None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            tr = model.trace(_context(model, tokenizer, ids))
    finally:
        model.train(was_training)
    signals = {k: v[:, 0, skip:].float().cpu().numpy() for k, v in tr.signals.items()}  # (L, T, H)
    probs = torch.softmax(tr.logits[0, skip:].float(), -1).cpu().numpy()  # (T, V)
    text = tokenizer.decode(ids)
    vocab = _token_texts(tokenizer, list(range(tokenizer.vocab_size)))
    return Activations(
        text, np.array(ids), _token_texts(tokenizer, ids), model.cfg.cell, signals, probs, vocab, _offsets(tokenizer, ids, text)
    )


def _offsets(tokenizer: Tokenizer, ids: list[int], text: str) -> np.ndarray:
    """(T+1,) character offsets of the tokens in the decoded text, so that a pattern
    matched on the text can be mapped back to token positions."""
    dec = tokenizer.stream_decoder()
    lengths = [len(dec.push(i)) for i in ids]
    if sum(lengths) != len(text):  # a decoder that holds text back: decode every prefix (slow, exact)
        lengths = np.diff([0] + [len(tokenizer.decode(ids[: t + 1])) for t in range(len(ids))]).tolist()
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def saturation(acts: Activations, low: float = 0.1, high: float = 0.9) -> dict[str, np.ndarray]:
    """For every gate: (L, H, 2), the fraction of timesteps each unit spends below
    `low` (left-saturated, shut) and above `high` (right-saturated, open)."""
    from .cells import CELLS

    out = {}
    for gate in CELLS[acts.cell].gates:
        g = acts.signals[gate]  # (L, T, H)
        out[gate] = np.stack([(g < low).mean(axis=1), (g > high).mean(axis=1)], axis=-1)
    return out


def gradient_flow(model: CharRNN, tokenizer: Tokenizer, text: str, unknown: str = "error") -> dict[str, np.ndarray]:
    """|dL_T / d h_t| for every layer and every t <= T, where L_T is the loss of
    the last prediction in the text (its last token, predicted from the rest).
    Index t reads "T - t steps back" from the end: the vanishing (or exploding)
    gradient of section 10.7, measured on this model. LSTMs also get the cell c."""
    ids = _ids(tokenizer, text, unknown)
    if len(ids) < 2:
        raise TokenizerError("the text needs at least two tokens to measure gradients through time.")
    skip = int(tokenizer.eos_id is not None)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            idx = _context(model, tokenizer, ids)
            tr = model.trace(idx[:, :-1])
            loss = torch.nn.functional.cross_entropy(tr.logits[0, -1:].float(), idx[0, -1:])
            names = [n for n in ("h", "c") if n in tr.steps]
            flat = [t for n in names for layer in tr.steps[n] for t in layer]
            grads = torch.autograd.grad(loss, flat, allow_unused=True)
    finally:
        model.train(was_training)
    out, i = {}, 0
    L, T = model.cfg.layers, idx.shape[1] - 1
    for n in names:
        norms = np.zeros((L, T), dtype=np.float32)
        for k in range(L):
            for t in range(T):
                g = grads[i]
                norms[k, t] = 0.0 if g is None else float(g.norm())
                i += 1
        out[n] = norms[:, skip:]
    return out


def probe(model: CharRNN, tokenizer: Tokenizer, text: str, step: int) -> Probe:
    return Probe(step, activations(model, tokenizer, text, unknown="skip"), gradient_flow(model, tokenizer, text, unknown="skip"))


# ------------------------------------------------------------ the inspector's analyses


def tanh_saturation(acts: Activations, high: float = 0.9) -> dict[str, np.ndarray]:
    """For a cell without gates, how often h = tanh(a) sits in its flat tails: (L, H, 2),
    the fraction of timesteps each unit spends below -high and above +high."""
    h = acts.signals["h"]  # (L, T, H)
    return {"h": np.stack([(h < -high).mean(axis=1), (h > high).mean(axis=1)], axis=-1)}


def unit_values(acts: Activations, what: str, layer: int, unit: int) -> np.ndarray:
    """(T,) one unit's signal along the text; clear errors for names and indices that do not exist."""
    if what not in acts.signals:
        raise ConfigError(f"an {acts.cell} has no signal {what!r}; choose one of {', '.join(acts.signals)}.")
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


# ------------------------------------------------------------------- JSON export

FORMAT, VERSION = "charrnn-inspect", 1


def _array(a: np.ndarray) -> str:
    """Nested JSON lists, floats with 7 significant digits (float32's own precision),
    NaN and infinities as null. Formats a row at a time: large arrays are most of a file."""
    a = np.asarray(a)
    if a.ndim == 0 or a.size == 0:
        return json.dumps(a.tolist())
    rows = a.reshape(-1, a.shape[-1])
    if a.dtype.kind == "b":
        lines = ["[" + ",".join("true" if x else "false" for x in r) + "]" for r in rows]
    else:
        kind = "%.7g" if a.dtype.kind == "f" else "%d"
        fmt = "[" + ",".join([kind] * rows.shape[1]) + "]"
        finite = np.isfinite(rows).all(axis=1) if a.dtype.kind == "f" else np.ones(len(rows), bool)
        lines = [
            fmt % tuple(r.tolist()) if ok else json.dumps([x if np.isfinite(x) else None for x in r.tolist()])
            for r, ok in zip(rows, finite)
        ]
    for n in reversed(a.shape[:-1]):  # group rows into the outer dimensions, innermost first
        lines = ["[" + ",".join(lines[i : i + n]) + "]" for i in range(0, len(lines), n)]
    return lines[0]


def to_json(acts: Activations, meta: dict[str, Any] | None = None, gradients: dict[str, np.ndarray] | None = None,
            found: Sequence[UnitScore] = (), pattern: str | None = None, inside: np.ndarray | None = None) -> str:  # fmt: skip
    """Every array of an inspection as one JSON document, for other tools. Arrays are
    nested lists; `shapes` and `dims` say how to read each, indices 0-based."""
    arrays: dict[str, tuple[np.ndarray, list[str]]] = {
        f"signals.{n}": (v, ["layer", "t", "unit"]) for n, v in acts.signals.items()
    }
    arrays["probs"] = (acts.probs, ["t", "next_token"])
    arrays["next_token_prob"] = (next_token_probs(acts), ["t"])
    sat = saturation(acts) if _gates(acts) else tanh_saturation(acts)
    for n, v in sat.items():
        arrays[f"saturation.{n}"] = (v, ["layer", "unit", "low_high"])
    for n, v in (gradients or {}).items():
        arrays[f"gradients.{n}"] = (v, ["layer", "t"])
    if inside is not None:
        arrays["find.inside"] = (inside, ["t"])
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "indexing": "0-based",
        **(meta or {}),
        "cell": acts.cell,
        "layers": acts.layers,
        "hidden": acts.hidden,
        "text": acts.text,
        "tokens": list(acts.tokens),
        "ids": acts.ids.tolist(),
        "offsets": None if acts.offsets is None else acts.offsets.tolist(),
        "vocab": list(acts.vocab),
        "saturation_thresholds": [0.1, 0.9] if _gates(acts) else [-0.9, 0.9],
        "gradients_note": "gradients.NAME[layer][t] = |dL/dNAME_t|, L the loss of predicting the last token from the rest; "
        "entry t lies len - 1 - t steps back from that loss",
        "find": None if pattern is None else {"pattern": pattern, "units": [vars(u) for u in found]},
        "shapes": {k: list(np.shape(v)) for k, (v, _) in arrays.items()},
        "dims": {k: d for k, (_, d) in arrays.items()},
    }
    head = json.dumps(doc, ensure_ascii=False)
    body = ",".join(f"{json.dumps(k)}:{_array(v)}" for k, (v, _) in arrays.items())
    return head[:-1] + ',"arrays":{' + body + "}}"


def _gates(acts: Activations) -> tuple[str, ...]:
    from .cells import CELLS

    spec = CELLS.get(acts.cell)
    return spec.gates if spec else ()
