"""The atlas and the search in the terminal (Rich renderables), its braille saturation
scatter (shared with the TUI) and its JSON. Pure functions; nothing here runs a model."""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..models import registry
from .annotations import AUC
from .atlas import Atlas, Finding
from .palette import TRUECOLOR
from .search import Search
from .view import colored_text, diverging, scaled, titled, visible

GATE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
FORMAT, VERSION = "charrnn-atlas", 1


def measure_name(m: str) -> str:
    return "AUC" if m == AUC else "|r|"


def _excerpt(f: Finding, cell: str, depth: str) -> Text:
    ex = f.excerpt
    if ex is None:
        return Text("")
    u = f.best[0].unit
    v = scaled(registry.range_of(cell, u.what), np.array(ex.values))
    marks = [bool(m) for m in ex.marks] if f.measure == AUC else None
    return colored_text(ex.tokens, [diverging(float(x), depth) for x in v], marks)


def atlas_view(at: Atlas, depth: str = TRUECOLOR, excerpts: bool = True) -> RenderableType:
    """The best units per annotation with score and baseline, an excerpt per annotation
    coloured by its best unit, then what nothing explains."""
    table = Table(box=None, pad_edge=False)
    for name, just in (("annotation", "left"), ("", "left"), ("best unit", "left"), ("score", "right"), ("", "left"),
                       ("baseline", "right"), ("next best", "left"), ("", "left")):  # fmt: skip
        table.add_column(name, justify=just, no_wrap=name not in ("annotation", "next best"), ratio=1 if name == "next best" else None)  # type: ignore[arg-type]
    for f in at.findings:
        b = f.best[0]
        others = ", ".join(f"{s.unit} {s.score:.2f}" for s in f.best[1:2])
        good = "green" if f.explained else "dim"
        table.add_row(
            f.name, measure_name(f.measure), str(b.unit), Text(f"{b.score:.3f}", style=good),
            "+" if b.sign > 0 else "−", f"{f.baseline:.3f}", others, Text("✓", style="green") if f.explained else Text("·", style="dim"),
        )  # fmt: skip
    sec = f"{at.seconds:.1f} s ({at.cpu_seconds:.1f} CPU s)"
    head = (f"atlas: {at.units:,} units ({', '.join(at.signals)} x {at.layers} layers x {at.hidden}) over {at.tokens:,} positions "
            f"in {at.streams} streams, {sec}")  # fmt: skip
    foot = Text(
        "score: AUC for yes/no annotations (of the better direction: '−' = lower where it holds; from a random sample of "
        f"{at.sample:,} positions), |Pearson r| for counts (every position). baseline: the best score of any unit with the "
        "annotation shifted half the text against the activations (chance for something as bursty). Explained: best >= "
        "0.8 AUC or 0.5 |r|, and baseline + 0.1 (✓).",
        style="dim",
    )
    parts: list[RenderableType] = [titled(head, table), foot]
    missing = [f.name for f in at.findings if not f.explained]
    parts.append(Text.assemble(("annotations no unit explains: ", "bold"), ", ".join(missing) if missing else "none"))
    per = "; ".join(f"{n} " + "/".join(str(c) for c in counts) for n, counts in at.unexplained.items())
    total = sum(sum(c) for c in at.unexplained.values())
    parts.append(Text.assemble(("units that explain nothing known: ", "bold"), f"{total:,} of {at.units:,} (per signal, layer 0/1/...: {per})"))
    if at.quiet:
        parts.append(Text("  the liveliest of them (largest spread): " + ", ".join(str(u) for u in at.quiet), style="dim"))
    if excerpts:
        for f in at.findings:
            if f.excerpt is None:
                continue
            b = f.best[0]
            parts.append(Text(""))
            parts.append(Text.assemble((f.name, "bold"), f": {b.unit}, {measure_name(f.measure)} {b.score:.3f}",
                                       " (underlined: where it holds)" if f.measure == AUC else ""))  # fmt: skip
            parts.append(_excerpt(f, at.cell, depth))
    return Group(*parts)


def search_view(s: Search, n: int) -> RenderableType:
    units = ", ".join(f"{s.what} {k}:{u}" for k, u in s.units[:24]) + (" ..." if len(s.units) > 24 else "")
    head = Text.assemble(
        ("search ", "bold"), f"{s.span[0]}:{s.span[1]} ", (visible(s.selected), "reverse"),
        f": {len(s.units)} units of {s.what} on (>= {s.threshold:g}, --threshold) throughout it and off within {s.margin} "
        f"positions around it (--margin)", f"{': ' + units if units else ''}",
    )  # fmt: skip
    if not s.units:
        return Group(head, Text("no unit is on throughout the selection and off around it; lower --threshold, or select a shorter span.", style="dim"))
    table = Table(box=None, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("at", justify="right")
    table.add_column("on", justify="right")
    table.add_column("match in context")
    for r, m in enumerate(s.matches, 1):
        table.add_row(str(r), f"{m.start}:{m.end}", f"{m.share:.0%}", Text.assemble(visible(m.before), (visible(m.text), "reverse"), visible(m.after)))
    if not s.matches:
        return Group(head, Text(f"no other place in the {n:,} positions read has all of them on together.", style="dim"))
    return Group(head, titled(f"other places where they are on together ({len(s.matches)} shown, best first)", table))


# ----------------------------------------------------------------- the scatter


BRAILLE = 0x2800
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a cell


def scatter(points: dict[str, np.ndarray], width: int = 24, height: int = 8) -> list[list[tuple[str, str | None]]]:
    """Braille scatter of (x, y) in [0, 1]^2 per name (each (n, 2)): rows of (character, the
    name with most points in that cell); y grows upward. width x height cells, 2x4 dots each."""
    bits = np.zeros((height, width), np.int64)
    owner: dict[tuple[int, int], dict[str, int]] = {}
    for name, pts in points.items():
        for x, y in np.asarray(pts, np.float64):
            px = min(int(x * (2 * width - 1) + 0.5), 2 * width - 1)
            py = min(int((1 - y) * (4 * height - 1) + 0.5), 4 * height - 1)
            r, c = py // 4, px // 2
            bits[r, c] |= _DOTS[py % 4][px % 2]
            cell = owner.setdefault((r, c), {})
            cell[name] = cell.get(name, 0) + 1
    rows = []
    for r in range(height):
        row = []
        for c in range(width):
            cell = owner.get((r, c))
            row.append((chr(BRAILLE + int(bits[r, c])), max(cell, key=cell.get) if cell else None))  # type: ignore[arg-type]
        rows.append(row)
    return rows


def scatter_view(at: Atlas, width: int = 24, height: int = 8) -> RenderableType:
    """One braille panel per layer: each unit of each gate a dot at (share of time below the
    low threshold, share above the high one)."""
    if not at.saturation:
        return Text("no saturating signals")
    names = list(at.saturation)
    colors = {n: GATE_COLORS[i % len(GATE_COLORS)] for i, n in enumerate(names)}
    panels = []
    for k in range(at.layers):
        grid = scatter({n: at.saturation[n][k] for n in names}, width, height)
        t = Text(f"layer {k}\n", style="bold")
        for r, row in enumerate(grid):
            t.append("1 " if r == 0 else "  ", "dim")
            t.append("│", "dim")
            for ch, n in row:
                t.append(ch, colors.get(n, "") if n else "")
            t.append("\n")
        t.append("  └" + "─" * width + "\n", "dim")
        t.append("   0" + " " * (width - 2) + "1", "dim")
        panels.append(t)
    grid_table = Table.grid(padding=(0, 3))
    for _ in panels:
        grid_table.add_column()
    grid_table.add_row(*panels)
    lo_hi = "; ".join(f"{n} < {lo:g} / > {hi:g}" for n, (lo, hi) in at.thresholds.items())
    key = Text.assemble(*[(f"● {n}  ", colors[n]) for n in names])
    return Group(Text("saturation: each unit a dot, x = share of time below the low threshold, y = above the high one", style="bold"),
                 grid_table, key, Text(f"thresholds (registry.THRESHOLDS): {lo_hi}", style="dim"))  # fmt: skip


# ---------------------------------------------------------------------- JSON


def to_json(at: Atlas | None, s: Search | None, meta: dict[str, Any]) -> str:
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, **meta}
    if at is not None:
        doc["atlas"] = atlas_dict(at)
    if s is not None:
        doc["search"] = search_dict(s)
    return json.dumps(doc, ensure_ascii=False, indent=1)


def atlas_dict(at: Atlas) -> dict[str, Any]:
    def unit(u: Any) -> dict[str, Any]:
        return {"what": u.what, "layer": u.layer, "unit": u.unit}

    return {
        "cell": at.cell, "layers": at.layers, "hidden": at.hidden, "signals": list(at.signals), "positions": at.tokens,
        "streams": at.streams, "auc_sample": at.sample, "seconds": round(at.seconds, 3), "cpu_seconds": round(at.cpu_seconds, 3),
        "scores": {"auc": "AUC of the better direction (yes/no annotations), ranks of a random sample of positions",
                   "r": "|Pearson r| (counts), every position",
                   "baseline": "best score of any unit with the annotation circularly shifted by half the text"},
        "annotations": [
            {"name": f.name, "about": f.about, "measure": f.measure, "rate": f.rate, "baseline": f.baseline, "explained": f.explained,
             "best": [{**unit(b.unit), "score": b.score, "sign": b.sign} for b in f.best],
             "excerpt": None if f.excerpt is None else {"start": f.excerpt.start, "tokens": list(f.excerpt.tokens),
                                                         "values": list(f.excerpt.values), "annotation": list(f.excerpt.marks)}}
            for f in at.findings
        ],
        "unexplained_units": at.unexplained,
        "liveliest_unexplained": [unit(u) for u in at.quiet],
        "saturation": {n: v.tolist() for n, v in at.saturation.items()},
        "thresholds": {n: list(v) for n, v in at.thresholds.items()},
    }  # fmt: skip


def search_dict(s: Search) -> dict[str, Any]:
    return {
        "span": list(s.span), "selected": s.selected, "what": s.what, "threshold": s.threshold, "margin": s.margin, "share": s.share,
        "units": [{"layer": k, "unit": u} for k, u in s.units],
        "matches": [{"start": m.start, "end": m.end, "share": m.share, "text": m.text, "before": m.before, "after": m.after} for m in s.matches],
    }  # fmt: skip


def jsonable_points(at: Atlas) -> dict[str, list]:
    """signal -> per layer, per unit [below, above], rounded: for the page's SVG scatter."""
    return {n: np.round(v, 4).tolist() for n, v in at.saturation.items()}


__all__: Sequence[str] = ("atlas_view", "search_view", "scatter", "scatter_view", "to_json")
