"""The atlas's sections of the inspect page (html.py): the table of what units track,
with excerpts, the saturation scatter as SVG (one panel per layer), and the search
panel (drag over the text; page.js does the search on the page's own activations).
Static parts are escaped here; the search runs in the page's script."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..models import registry
from .annotations import AUC
from .atlas import Atlas
from .atlasview import GATE_COLORS, measure_name
from .search import Search
from .view import diverging, scaled


def data(at: Atlas | None, s: Search | None, defaults: tuple[str, float, int] | None) -> dict[str, Any]:
    """What page.js needs: the annotations' best units (to pick), and the search's settings."""
    out: dict[str, Any] = {}
    if at is not None:
        out["atlas"] = [{"name": f.name, "what": f.best[0].unit.what, "layer": f.best[0].unit.layer, "unit": f.best[0].unit.unit} for f in at.findings]
    if defaults is not None:
        what, th, margin = defaults
        out["search"] = {"what": what, "threshold": th, "margin": margin}
    return out


def _excerpt(f: Any, cell: str) -> str:
    ex = f.excerpt
    if ex is None:
        return ""
    u = f.best[0].unit
    v = scaled(registry.range_of(cell, u.what), np.array(ex.values))
    spans = []
    for tok, x, m in zip(ex.tokens, v, ex.marks):
        c = diverging(float(x)).get_truecolor()
        under = ' class="in"' if f.measure == AUC and m else ""
        shown = html.escape(tok.replace("\n", "↵"))
        spans.append(f'<span{under} style="background:rgb({c.red},{c.green},{c.blue})">{shown}</span>')
    return f'<div class="excerpt text">{"".join(spans)}</div>'


def atlas_section(at: Atlas) -> str:
    e = html.escape
    rows = []
    for i, f in enumerate(at.findings):
        b = f.best[0]
        nxt = ", ".join(f"{e(str(s.unit))} {s.score:.2f}" for s in f.best[1:])
        rows.append(
            f'<tr data-what="{e(b.unit.what)}" data-layer="{b.unit.layer}" data-unit="{b.unit.unit}" tabindex="0" class="{"ok" if f.explained else "no"}">'
            f"<td>{e(f.name)}</td><td>{measure_name(f.measure)}</td><td>{e(str(b.unit))}</td><td>{b.score:.3f}</td>"
            f"<td>{'+' if b.sign > 0 else '−'}</td><td>{f.baseline:.3f}</td><td>{nxt}</td>"
            f"<td>{'explained' if f.explained else 'not explained'}</td></tr>"
            f'<tr class="ex"><td colspan="8">{_excerpt(f, at.cell)}</td></tr>'
        )
    missing = ", ".join(e(f.name) for f in at.findings if not f.explained) or "none"
    total = sum(sum(c) for c in at.unexplained.values())
    quiet = ", ".join(e(str(u)) for u in at.quiet)
    return f"""<section id="atlas"><h2>atlas: what each unit tracks</h2>
<p class="note">{at.units:,} units ({e(", ".join(at.signals))} × {at.layers} layers × {at.hidden}) scored over {at.tokens:,} positions
({at.streams} streams, {at.seconds:.1f} s). Score: AUC for yes/no annotations (of the better direction; − means lower where it holds;
ranks of {at.sample:,} random positions), |Pearson r| for counts. Baseline: the best score of any unit with the annotation shifted
half the text against the activations. Click a row to colour the text above by that unit; each excerpt is coloured by it.</p>
<table class="num"><thead><tr><th>annotation</th><th>score</th><th>best unit</th><th></th><th>dir</th><th>baseline</th><th>next best</th>
<th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<p class="note"><b>No unit explains:</b> {missing}. <b>Units that explain nothing known:</b> {total:,} of {at.units:,}; the liveliest: {quiet}.</p>
</section>
"""


def scatter_svg(at: Atlas, size: int = 220) -> str:
    """Per layer, each unit of each saturating signal a dot at (time below low, time above high)."""
    if not at.saturation:
        return ""
    names = list(at.saturation)
    pad = 30
    panels = []
    for k in range(at.layers):
        dots = []
        for i, n in enumerate(names):
            color = GATE_COLORS[i % len(GATE_COLORS)]
            for u, (x, y) in enumerate(at.saturation[n][k]):
                cx, cy = pad + x * size, pad + (1 - y) * size
                dots.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="{color}" fill-opacity="0.6"><title>{html.escape(n)} {k}:{u}</title></circle>')
        panels.append(
            f'<svg class="scatter" viewBox="0 0 {size + 2 * pad} {size + 2 * pad}" width="{size + 2 * pad}" height="{size + 2 * pad}" '
            f'role="img" aria-label="saturation of layer {k}"><rect x="{pad}" y="{pad}" width="{size}" height="{size}" class="frame"/>'
            f'<text x="{pad + size / 2}" y="{pad - 10}" class="axis" text-anchor="middle">layer {k}</text>'
            f'<text x="{pad + size / 2}" y="{size + 2 * pad - 6}" class="axis" text-anchor="middle">time below low →</text>'
            f'<text x="12" y="{pad + size / 2}" class="axis" text-anchor="middle" transform="rotate(-90 12 {pad + size / 2})">time above high →</text>'
            f'{"".join(dots)}</svg>'
        )
    key = "".join(f'<li><span class="swatch" style="background:{GATE_COLORS[i % len(GATE_COLORS)]}"></span>{html.escape(n)} '
                  f'(&lt; {at.thresholds[n][0]:g} / &gt; {at.thresholds[n][1]:g})</li>' for i, n in enumerate(names))  # fmt: skip
    return f"""<section id="scatter"><h2>saturation: each unit a dot</h2>
<p class="note">x: the share of time a unit spends below its low threshold (a shut gate), y: above its high one (an open gate);
thresholds from registry.THRESHOLDS. Karpathy et al. (2015) plot the same per layer.</p>
<div class="panels">{"".join(panels)}</div><ul class="legend">{key}</ul></section>
"""


def search_section(s: Search | None, what: str, threshold: float, margin: int) -> str:
    e = html.escape
    cli = ""
    if s is not None:
        items = "".join(f"<li>{m.start}:{m.end} ({m.share:.0%}) <code>{e(m.before[-12:])}<mark>{e(m.text)}</mark>{e(m.after[:12])}</code></li>" for m in s.matches)
        cli = (f'<p class="note">--select {s.span[0]}:{s.span[1]} over the whole text read: {len(s.units)} units of {e(s.what)} '
               f"on (≥ {s.threshold:g}); {len(s.matches)} other places.</p><ol class=\"cli-matches\">{items}</ol>")  # fmt: skip
    return f"""<section id="search"><h2>search by example</h2>
<p class="note">Drag over a stretch of the text at the top. The units of <b id="search-what">{e(what)}</b> on (≥ threshold) throughout it
and off within the margin around it are chosen; then every other place in this page's text where they are all on together is
listed, best first. Click one to go there.</p>
<p><label>threshold <input id="search-threshold" type="number" step="0.05" value="{threshold:g}"></label>
<label>margin <input id="search-margin" type="number" min="0" step="1" value="{margin}"></label>
<span id="search-status" class="note">no selection yet</span></p>
<ol id="search-matches"></ol>{cli}</section>
"""
