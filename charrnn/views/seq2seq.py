"""An encoder-decoder in the terminal: the best beams with their log-probabilities,
the attention map (source across, output down), and the end-of-run report
(exact match and character error rate by source length)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from rich.color import Color
from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..inspect.view import probable, visible
from ..tasks.reports import END, Decoded, Seq2SeqReport

DARK, BRIGHT = (24, 24, 28), (255, 215, 0)


def weight_style(w: float) -> Style:
    """A cell's background for an attention weight in [0, 1]: dark for nothing, bright yellow for all."""
    w = min(max(float(w), 0.0), 1.0) ** 0.5  # the square root lifts the small weights into view
    rgb = tuple(round(a + (b - a) * w) for a, b in zip(DARK, BRIGHT))
    return Style(bgcolor=Color.from_rgb(*rgb), color="black" if w > 0.6 else "white")


def prediction(p: Any, opts: Any) -> Iterable[RenderableType]:
    d: Decoded = p.details
    if opts.top > 1 and d.beams:
        yield beams(d)
    if opts.attention_map and d.attention is not None:
        yield from attention_map(d)


def beams(d: Decoded) -> RenderableType:
    table = Table(title=f"{d.how}: the best {len(d.beams)}, by log P / length^0.7", title_justify="left", title_style="dim", pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("output", style="bold")
    table.add_column("log P", justify="right")
    table.add_column("score", justify="right", style="dim")
    for k, b in enumerate(d.beams, 1):
        table.add_row(str(k), visible(b.output) + ("" if b.finished else " …(cut)"), f"{b.logp:.3f}", f"{b.score:.3f}")
    return table


def attention_map(d: Decoded, width: int = 2) -> Iterable[RenderableType]:
    """α(t, s): one row per character written, one column per source character."""
    assert d.attention is not None
    yield Text(f"attention ({d.how}): the source across, the output down; brighter = more weight; each row sums to 1", style="dim")
    labels = [visible(step)[:1] if step != END else "⏹" for step in d.steps]
    label_w = 1
    head = Text(" " * (label_w + 1))
    for ch in d.source:
        head.append(visible(ch)[:1].ljust(width), style="bold")
    rows = [head]
    for t, label in enumerate(labels):
        row = Text(f"{label:>{label_w}} ", style="bold")
        for s in range(len(d.source)):
            row.append(" " * width, style=weight_style(d.attention[t, s]))
        top = int(np.argmax(d.attention[t]))
        row.append(f" {d.attention[t, top]:.2f} on {visible(d.source[top])!r}"[:24], style="dim")
        rows.append(row)
    yield Text("\n").join(rows)


def report(r: Seq2SeqReport) -> Iterable[RenderableType]:
    head = Text(f"validation: {r.n:,} pairs, greedy decoding; ", style="bold")
    head.append(f"exact match {r.exact:.1%}", style="bold green")
    head.append(f" · character error rate {r.cer:.2%}")
    yield head
    table = Table(title="by source length (characters)", title_justify="left", title_style="dim", pad_edge=False)
    table.add_column("source", justify="right")
    table.add_column("pairs", justify="right")
    table.add_column("exact match", justify="right")
    table.add_column("CER", justify="right")
    table.add_column("")
    for row in r.rows:
        span = f"{row.lo}" if row.lo == row.hi else f"{row.lo}-{row.hi}"
        beyond = "longer than any training source" if row.lo > r.train_max else ""
        table.add_row(span, f"{row.n:,}", Text(f"{row.exact:.1%}", style=Style(color=probable(row.exact))), f"{row.cer:.2%}",
                      Text(beyond, style="dim"))  # fmt: skip
    yield table
    if r.mistakes:
        lines = [Text("some mistakes (source → output, expected):", style="dim")]
        for source, target, output in r.mistakes:
            line = Text(f"  {visible(source)} → ")
            line.append(visible(output), style="red")
            line.append(f"  ({visible(target)})", style="dim")
            lines.append(line)
        yield Text("\n").join(lines)
