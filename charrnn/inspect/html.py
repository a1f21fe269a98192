"""`charrnn inspect --html`: one self-contained page of what the inspector sees.

A pure function from the inspector's arrays to an HTML string. Styles and script
are inline (page.css and page.js beside this file) and nothing is fetched, no font,
no library, so the page opens offline and can be shared as one file. It shows the
text coloured by any unit of any layer and signal (pickers, and the `--find`
ranking as a list of units to pick), how expected each character was, the top
predictions at each character on hover, the `--find` table, the gradient through
time (an SVG, log scale, a line per layer and signal) and the gate saturation.

Activations travel quantised: each signal's values are mapped onto 2^bits levels
over its range (gates 0..1, tanh signals -1..1, unbounded ones (an LSTM's cell, an
RNN's pre-activation) over ±their largest magnitude), a byte each, deflated (the
browser inflates them with its own DecompressionStream) and base64-encoded. The
bits come down from 8 until the payload fits BUDGET; activations are noisy, so
deflate gains little on 8 bits and much on fewer. Measured: 2,000 characters of a
2x256 LSTM (six signals, 6.1 million values) need 5 bits (31 steps, about the 33
colours of the terminal heatmap) and make a page of 3.8-4.0 MB; at 8 bits it would
be 8.2 MB without deflate, 6.7 MB with it.

Everything taken from the text or the command line is escaped: the data travel as
JSON in a <script type="application/json"> with <, > and & written as \\u escapes,
static parts go through html.escape, and the script puts text on the page only
through textContent.
"""

from __future__ import annotations

import base64
import html
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..models.registry import FREE, GATE, range_of
from .stats import UnitScore, decay_per_step, next_token_probs
from .trace import Activations
from .view import BLUE, HIGH, LOW, MID, RED, WHITE

FORMAT, VERSION = "charrnn-inspect-html", 1
BUDGET = 3_000_000  # deflated activation bytes (about 4 MB of base64): the page stays a few MB
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_HERE = Path(__file__).parent


@dataclass(frozen=True)
class PageMeta:
    """What the page says about where its numbers come from, and what it shows first."""

    source: str  # the checkpoint
    model: str  # e.g. "lstm 2x256, step 4,392"
    what: str = "h"  # the unit shown first
    layer: int = 0
    unit: int = 0
    top_k: int = 5
    saturation_title: str = "gate saturation: fraction of timesteps per unit"
    saturation_low: str = "< 0.1"
    saturation_high: str = "> 0.9"


# ---------------------------------------------------------------- quantising


def signal_range(kind: str, values: np.ndarray) -> tuple[float, float]:
    if kind == GATE:
        return 0.0, 1.0
    if kind == FREE:
        m = float(np.nanmax(np.abs(values))) if values.size else 0.0
        return -max(m, 1e-6), max(m, 1e-6)
    return -1.0, 1.0


def quantise(values: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """(L, T, H) floats -> (L, H, T) uint8 levels 0..2^bits-1 over [lo, hi]: one unit's
    values along the text lie side by side, as the page reads them."""
    levels = (1 << bits) - 1
    q = np.rint((np.nan_to_num(values.astype(np.float64)) - lo) / (hi - lo) * levels)
    return np.clip(q, 0, levels).astype(np.uint8).transpose(0, 2, 1).copy()


def packed_signals(acts: Activations, budget: int = BUDGET) -> tuple[list[dict], int]:
    """Every signal quantised and deflated at the most bits (8 down to 4) that fit the budget."""
    kinds = {n: range_of(acts.cell, n) for n in acts.signals}
    ranges = {n: signal_range(kinds[n], v) for n, v in acts.signals.items()}
    for bits in (8, 7, 6, 5, 4):
        blobs = {n: zlib.compress(quantise(v, *ranges[n], bits).tobytes(), 6) for n, v in acts.signals.items()}
        if sum(len(b) for b in blobs.values()) <= budget or bits == 4:
            break
    out = [
        {"name": n, "kind": kinds[n], "lo": ranges[n][0], "hi": ranges[n][1], "levels": (1 << bits) - 1,
         "data": base64.b64encode(blobs[n]).decode("ascii")}
        for n in acts.signals
    ]  # fmt: skip
    return out, bits


def _round(x: float, digits: int = 4) -> float | None:
    return None if not math.isfinite(x) else float(f"{x:.{digits}g}")


# ---------------------------------------------------------------- the page


def render(
    acts: Activations,
    meta: PageMeta,
    saturation: dict[str, np.ndarray] | None = None,
    gradients: dict[str, np.ndarray] | None = None,
    found: Sequence[UnitScore] = (),
    pattern: str | None = None,
    inside: np.ndarray | None = None,
    budget: int = BUDGET,
    atlas: Any = None,
    search: Any = None,
    search_defaults: tuple[str, float, int] | None = None,
) -> str:
    """The whole page as one string. `saturation` is probe.saturation's (or
    tanh_saturation's) output, `gradients` gradient_flow's, `found` and `inside`
    find_units' ranking and match_mask's positions for `pattern`. `atlas` (atlas.Atlas)
    and `search_defaults` (signal, threshold, margin) add the atlas's sections and the
    search by dragging over the text (atlas_html.py); `search` a --select's result."""
    from . import atlas_html
    signals, bits = packed_signals(acts, budget)
    T = len(acts.tokens)
    k = max(1, min(meta.top_k, acts.probs.shape[1]))
    top = np.argsort(-acts.probs, axis=1, kind="stable")[:, :k]  # (T, k)
    top_p = np.take_along_axis(acts.probs, top, axis=1)  # (T, k)
    p_next = next_token_probs(acts)
    data = {
        "format": FORMAT,
        "version": VERSION,
        "cell": acts.cell,
        "layers": acts.layers,
        "hidden": acts.hidden,
        "tokens": list(acts.tokens),
        "next": [acts.tokens[t + 1] if t + 1 < T else None for t in range(T)],
        "signals": signals,
        "bits": bits,
        "busiest": {n: [int(np.argmax(v[k_].std(axis=0))) for k_ in range(acts.layers)] for n, v in acts.signals.items()},
        "select": {"what": meta.what, "layer": meta.layer, "unit": meta.unit},
        "p_next": [_round(float(p), 5) for p in p_next],
        "top_ids": top.tolist(),
        "top_p": [[_round(float(p), 4) for p in row] for row in top_p],
        "vocab": list(acts.vocab) if acts.vocab else [str(i) for i in range(acts.probs.shape[1])],
        "inside": None if inside is None else [int(x) for x in inside],
        "found": [{"what": u.what, "layer": u.layer, "unit": u.unit, "score": _round(u.score, 3)} for u in found],
        "colors": {"blue": BLUE, "white": WHITE, "red": RED, "low": LOW, "mid": MID, "high": HIGH},
        **atlas_html.data(atlas, search, search_defaults or (meta.what, 0.5 if range_of(acts.cell, meta.what) == GATE else 0.3, 2)),
    }
    script_data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    script_data = script_data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    e = html.escape
    title = f"charrnn inspect: {meta.source}"
    what_, th, margin = search_defaults or (meta.what, data["search"]["threshold"], 2)
    sections = [
        atlas_html.search_section(search, what_, th, margin),
        atlas_html.atlas_section(atlas) if atlas is not None else "",
        atlas_html.scatter_svg(atlas) if atlas is not None else "",
        _find_table(found, pattern, inside) if pattern is not None else "",
        _gradient_svg(gradients) if gradients else "",
        _saturation_table(saturation, meta) if saturation else "",
    ]
    what_kind = "tokens" if any(len(t) > 1 for t in acts.tokens) else "characters"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="charrnn inspect --html">
<title>{e(title)}</title>
<style>{(_HERE / "page.css").read_text(encoding="utf-8")}</style>
</head><body>
<header><h1>charrnn inspect</h1>
<p class="meta"><span>{e(meta.source)}</span> · <span>{e(meta.model)}</span> · <span>{T:,} {what_kind}</span> ·
<span>layers 0–{acts.layers - 1}, units 0–{acts.hidden - 1} (0-based)</span></p></header>
<nav id="controls" aria-label="unit">
<label>signal <select id="what"></select></label>
<label>layer <select id="layer"></select></label>
<label>unit <button id="prev" title="previous unit (k)">◀</button><input id="unit" type="number" min="0" max="{acts.hidden - 1}" step="1"><button id="next" title="next unit (j)">▶</button></label>
<button id="busiest" title="the unit of this signal and layer that varies most along the text">busiest</button>
<label id="found-label"{'' if found else ' hidden'}>find a unit <select id="found"></select></label>
<label id="scale-label" hidden>colour by <select id="scale"><option value="tanh">tanh(value)</option><option value="own">value / its largest</option></select></label>
<span id="legend"></span>
</nav>
<main>
<section><h2 id="unit-title">the text coloured by a unit</h2>
<div id="unit-text" class="text" aria-live="polite"></div>
<p id="unit-stats" class="note"></p></section>
<section><h2>how expected each {what_kind[:-1]} was</h2>
<p class="note">p(token | the text before it): green likely, yellow middling, red surprising; hover over any {what_kind[:-1]} for the
model's top {k} predictions of what comes next.</p>
<div id="prob-text" class="text"></div>
<p id="prob-stats" class="note"></p></section>
{"".join(sections)}
</main>
<div id="tip" role="tooltip" hidden></div>
<footer>Made by <code>charrnn inspect --html</code>. Values are stored at {bits} bits ({(1 << bits) - 1} steps over each signal's
range); indices are 0-based, as in PyTorch. A value at position t is the signal after reading token t.</footer>
<pre id="selftest" hidden></pre>
<script id="data" type="application/json">{script_data}</script>
<script>{(_HERE / "page.js").read_text(encoding="utf-8")}</script>
</body></html>
"""


# ------------------------------------------------------------ static sections


def _find_table(found: Sequence[UnitScore], pattern: str, inside: np.ndarray | None) -> str:
    e = html.escape
    n_in = int(inside.sum()) if inside is not None else 0
    n = len(inside) if inside is not None else 0
    rows = "".join(
        f'<tr data-what="{e(u.what)}" data-layer="{u.layer}" data-unit="{u.unit}" tabindex="0">'
        f"<td>{r}</td><td>{u.layer}</td><td>{u.unit}</td><td>{e(u.what)}</td>"
        f'<td class="{"pos" if u.score > 0 else "neg"}">{u.score:+.3f}</td><td>{u.auc:.3f}</td>'
        f"<td>{u.mean_in:+.3f}</td><td>{u.mean_out:+.3f}</td><td>{'higher' if u.score > 0 else 'lower'} inside</td></tr>"
        for r, u in enumerate(found, 1)
    )
    return f"""<section id="find"><h2>units that separate <code>{e(pattern)}</code></h2>
<p class="note">{n_in:,} of {n:,} positions inside a match (underlined in the text above). Score = 2·AUC − 1: +1 when every
position inside is above every one outside, −1 when below. Click a row to colour the text by that unit.</p>
<table class="num"><thead><tr><th>#</th><th>layer</th><th>unit</th><th>what</th><th>score</th><th>AUC</th><th>mean inside</th>
<th>mean outside</th><th></th></tr></thead><tbody>{rows}</tbody></table></section>
"""


def _gradient_svg(flow: dict[str, np.ndarray], width: int = 760, height: int = 300) -> str:
    """|dL_T/dh_t| against the steps back T - t, log scale, one line per layer and signal."""
    series = [(f"{n} layer {k}", v[k][::-1]) for n, v in flow.items() for k in range(v.shape[0])]  # by distance
    allv = np.concatenate([s for _, s in series]) if series else np.zeros(0)
    pos = allv[allv > 0]
    if len(pos) == 0 or len(series[0][1]) < 2:
        return '<section id="gradients"><h2>gradient through time</h2><p class="note">no gradients: the text is too short.</p></section>'
    top, bottom = math.ceil(math.log10(pos.max())), math.floor(math.log10(pos.min()))
    if top == bottom:
        top += 1
    n = len(series[0][1])
    ml, mr, mt, mb = 56, 16, 12, 36
    pw, ph = width - ml - mr, height - mt - mb

    def x(d: float) -> float:
        return ml + pw * d / max(n - 1, 1)

    def y(g: float) -> float:
        return mt + ph * (top - math.log10(g)) / (top - bottom)

    grid = []
    step = max(1, math.ceil((top - bottom) / 8))
    for dec in range(top, bottom - 1, -step):
        yy = y(10.0**dec)
        grid.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
                    f'<text x="{ml - 6}" y="{yy + 4:.1f}" class="tick" text-anchor="end">1e{dec}</text>')  # fmt: skip
    xstep = 10 ** max(0, math.floor(math.log10(max(n - 1, 1))))
    if (n - 1) / xstep < 4:
        xstep = max(1, xstep // 2)
    for d in range(0, n, xstep):
        grid.append(f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{mt}" y2="{mt + ph}" class="grid"/>'
                    f'<text x="{x(d):.1f}" y="{mt + ph + 16}" class="tick" text-anchor="middle">{d}</text>')  # fmt: skip
    lines, legend = [], []
    for i, (name, s) in enumerate(series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        pts = " ".join(f"{x(d):.1f},{y(float(g)):.1f}" for d, g in enumerate(s) if g > 0)
        lines.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6"><title>{html.escape(name)}</title></polyline>')
        rate = decay_per_step(s[::-1])
        fit = "" if rate is None else f" ×{rate:.3f} a step back"
        legend.append(f'<li><span class="swatch" style="background:{color}"></span>‖∂L/∂{html.escape(name)}‖{fit}</li>')
    return f"""<section id="gradients"><h2>gradient through time</h2>
<p class="note">‖∂L<sub>T</sub>/∂h<sub>t</sub>‖, the gradient of the last character's loss with respect to each earlier state,
against the steps back T − t, on a log scale; ×r is the geometric rate fitted per step back (below 1 the gradient vanishes).</p>
<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="gradient through time">
{"".join(grid)}<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>{"".join(lines)}
<text x="{ml + pw / 2}" y="{height - 4}" class="axis" text-anchor="middle">steps back, T − t</text></svg>
<ul class="legend">{"".join(legend)}</ul></section>
"""


def _histogram(fractions: np.ndarray, color: str, bins: int = 10) -> str:
    counts, _ = np.histogram(fractions, bins=bins, range=(0.0, 1.0))
    top = counts.max() or 1
    bars = "".join(
        f'<rect x="{i * 8}" y="{20 - 20 * c / top:.1f}" width="7" height="{20 * c / top:.1f}" fill="{color}"><title>{c} units</title></rect>'
        for i, c in enumerate(counts)
    )
    return f'<svg class="hist" viewBox="0 0 {bins * 8} 20" width="{bins * 8}" height="20">{bars}</svg>'


def _saturation_table(sat: dict[str, np.ndarray], meta: PageMeta) -> str:
    e = html.escape
    lo, hi = e(meta.saturation_low), e(meta.saturation_high)
    rows = []
    for gate, s in sat.items():  # s: (L, H, 2)
        for k in range(s.shape[0]):
            left, right = s[k, :, 0], s[k, :, 1]
            rows.append(
                f"<tr><td>{e(gate)}</td><td>{k}</td><td>{left.mean():.1%}</td><td>{right.mean():.1%}</td>"
                f"<td>{int((left > 0.5).sum())} / {int((right > 0.5).sum())}</td>"
                f"<td>{_histogram(left, '#1f77b4')}</td><td>{_histogram(right, '#d62728')}</td></tr>"
            )
    return f"""<section id="saturation"><h2>{e(meta.saturation_title)}</h2>
<p class="note">Per layer, how much of the time units sit near their low end ({lo}) and their high end ({hi}); the bars
count units by that fraction, 0% on the left to 100% on the right.</p>
<table class="num"><thead><tr><th>signal</th><th>layer</th><th>mean {lo}</th><th>mean {hi}</th><th>units mostly<br>low / high</th>
<th>units by time {lo}</th><th>units by time {hi}</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>
"""
