"""The app's braille line chart: a plot of several series in one box, drawn with the
braille cells' 2 x 4 dots (the training screen's losses, the activations screen's
gradient through time). Split from widgets.py, which keeps the heatmap and the text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip

from .cells import PLAIN, Styled

# ------------------------------------------------------------------ chart

_DOTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)  # braille bit of (row, col)


@dataclass(frozen=True)
class Series:
    label: str
    xs: np.ndarray
    ys: np.ndarray
    color: str

    @classmethod
    def of(cls, label: str, points: "list[tuple[float, float]]", color: str) -> "Series":
        a = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return cls(label, a[:, 0], a[:, 1], color)


def _fmt(v: float, log: bool) -> str:
    if log:
        return f"1e{v:+.0f}" if abs(v - round(v)) < 0.05 else f"{10**v:.0e}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def braille_plot(series: list[Series], width: int, height: int, log_y: bool = False, empty: str = "no data yet") -> list[Text]:
    """Lines of a chart of the series: y labels on the left, x range below, each
    character cell a 2x4 braille dot grid. Later series draw over earlier ones."""
    out = []
    for base, first, spans in braille_rows(series, width, height, log_y, empty):
        line = Text(first, style=base)
        for text, style in spans:
            line.append(text, style=style)
        out.append(line)
    return out


Row = tuple[str, str, list[tuple[str, str]]]  # a chart line: its style, its first text (in that style), then (text, style) spans


def braille_rows(series: list[Series], width: int, height: int, log_y: bool = False, empty: str = "no data yet") -> list[Row]:
    """braille_plot's lines as plain pieces, for a widget that draws them itself:
    (the line's style, its first text, the (text, style) spans after it, each
    drawn over the line's style; a span of style "" has the line's style alone)."""
    gw = 7  # the y-label gutter
    pw, ph = max(1, width - gw), max(1, height - 1)
    X, Y = 2 * pw, 4 * ph
    clean = []
    for s in series:
        ys = np.log10(np.maximum(s.ys, 1e-12)) if log_y else s.ys
        ok = np.isfinite(s.xs) & np.isfinite(ys)
        if ok.any():
            clean.append((s, s.xs[ok], ys[ok]))
    if not clean or width < gw + 2 or height < 2:
        return [("dim", empty, [])] + [("", "", [])] * (height - 1)
    allx = np.concatenate([c[1] for c in clean])
    ally = np.concatenate([c[2] for c in clean])
    x0, x1 = float(allx.min()), float(allx.max())
    y0, y1 = float(ally.min()), float(ally.max())
    if x1 <= x0:
        x1 = x0 + 1.0
    pad = (y1 - y0) * 0.05 if y1 > y0 else 0.5
    y0, y1 = y0 - pad, y1 + pad
    codes = []
    for s, xs, ys in clean:
        col = (xs - x0) / (x1 - x0) * (X - 1)
        row = (y1 - ys) / (y1 - y0) * (Y - 1)
        ci = np.rint(col).astype(int)
        counts = np.bincount(ci, minlength=X)
        used = np.flatnonzero(counts)
        mean_row = np.bincount(ci, weights=row, minlength=X)[used] / counts[used]  # many points in a column: their mean
        cols = np.arange(used[0], used[-1] + 1)
        rows = np.rint(np.interp(cols, used, mean_row)).astype(int)
        grid = np.zeros((Y, X), dtype=bool)
        prev = np.concatenate((rows[:1], rows[:-1]))  # a vertical run joins each column to the last: a line, not dots
        lo, hi, ys_ = np.minimum(prev, rows), np.maximum(prev, rows), np.arange(Y)[:, None]
        grid[:, cols] = (ys_ >= lo) & (ys_ <= hi)
        codes.append((s.color, (grid.reshape(ph, 4, pw, 2) * _DOTS[None, :, None, :]).sum(axis=(1, 3))))
    lines = []
    labels = {0: _fmt(y1 - pad if not log_y else y1 - pad, log_y), ph - 1: _fmt(y0 + pad, log_y)}
    if ph >= 5:
        labels[(ph - 1) // 2] = _fmt((y0 + y1) / 2, log_y)
    # All rows at once: each cell's dots from every series, coloured by the last series with a
    # dot there; a row's text from its code points in one view, its spans at colour changes.
    cs = np.stack([c for _, c in codes])  # (series, ph, pw)
    code = np.bitwise_or.reduce(cs, axis=0)
    owner = np.where(cs > 0, np.arange(len(codes))[:, None, None], -1).max(axis=0)  # a later series colours the cell
    texts = np.ascontiguousarray(0x2800 + code, dtype=np.uint32).view(f"<U{pw}")[:, 0].tolist()
    change = np.ones((ph, pw), dtype=bool)
    np.not_equal(owner[:, 1:], owner[:, :-1], out=change[:, 1:])
    first = np.flatnonzero(change)
    row = first // pw
    ends = np.minimum(np.append(first[1:], ph * pw), (row + 1) * pw) - row * pw  # a span ends at the next or at its row's end
    runs = zip(row.tolist(), (first - row * pw).tolist(), ends.tolist(), owner.ravel()[first].tolist())
    spans: list[list[tuple[str, str]]] = [[("┤" if r in labels else "│", "dim")] for r in range(ph)]
    for r, start, end, k in runs:  # one span per run of cells of one colour
        spans[r].append((texts[r][start:end], codes[k][0] if k >= 0 else ""))
    for r in range(ph):
        lines.append(("dim", f"{labels.get(r, ''):>{gw - 1}}", spans[r]))
    left, right = (f"{x:,.0f}" if float(x).is_integer() else _fmt(x, False) for x in (x0, x1))
    lines.append(("dim", " " * (gw - 1) + "└", [(left + " " * max(1, pw - len(left) - len(right)) + right, "dim")]))
    return lines


@lru_cache(maxsize=256)
def _rendered(console: Console, line_style: str, style: str) -> Style:
    """The style Rich renders a piece of a Text of `line_style` with, under a span of
    `style` ("": none), where the Text has spans (Text.render: without, no style at all)."""
    get = partial(console.get_style, default=Style.null())
    return Style.combine([get(line_style), get(style)] if style else [get(line_style)])


class Chart(Styled):
    """A line chart of a few series (e.g. training and validation bits/char).

    Drawn through the line API from strips cached per size and data: a redraw
    that finds nothing new costs nothing, and none converts Rich text."""

    DEFAULT_CSS = "Chart { height: 1fr; min-height: 4; }"

    def __init__(self, *, log_y: bool = False, empty: str = "no data yet", **kw):
        super().__init__(**kw)
        self.log_y = log_y
        self.empty = empty
        self.series: list[Series] = []
        self._strips: list[Strip] | None = None
        self._key: tuple | None = None

    def plot(self, series: list[Series]) -> None:
        if len(series) == len(self.series) and all(
            (a.label, a.color) == (b.label, b.color) and np.array_equal(a.xs, b.xs) and np.array_equal(a.ys, b.ys, equal_nan=True)
            for a, b in zip(series, self.series)
        ):
            return  # the same curves (the screen redraws them when only the selected unit moves)
        self.series = series
        self._strips = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        size, look = self.frame_content_size(), self.look()
        w, h = size.width, size.height
        if self._strips is None or self._key != (w, h, look):
            # The pieces straight to segments, each styled as Rich would render the Text
            # braille_plot makes of them (the line's style, then the span's over it).
            console, base = self.app.console, look(PLAIN)
            self._strips = []
            for line_style, first, spans in braille_rows(self.series, w, h, self.log_y, self.empty):
                first_style = _rendered(console, line_style, "") if spans else PLAIN  # (Rich: a Text without spans is unstyled)
                segs = [Segment(first, look(first_style or PLAIN))] if first else []
                segs += [Segment(text, look(_rendered(console, line_style, style) or PLAIN)) for text, style in spans if text]
                self._strips.append(Strip(segs).adjust_cell_length(w, base))
            self._key = (w, h, look)
        return self._strips[y] if y < len(self._strips) else Strip.blank(w, look(PLAIN))
