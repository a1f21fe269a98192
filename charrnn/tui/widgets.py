"""The app's own widgets: an activation heatmap and text coloured by one unit (the
braille line chart is chart.py, imported here too). They draw from plain numpy
arrays handed to them by the screens and keep no reference to a model."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip

from . import colors
from .cells import DIM, PLAIN, REVERSE, SELECTED, Look, Runs, Styled, fit
from .chart import Chart, Series, braille_plot  # noqa: F401  (the screens import the chart from here)

# ---------------------------------------------------------------- heatmap


def glyph(token: str) -> str:
    """One cell that stands for a token in a header or a text line."""
    if token == "\n":
        return "↵"
    if token == "\t":
        return "⇥"
    if token == "<eod>":
        return "¶"
    ch = token[:1] or "?"
    if not ch.isprintable() or cell_len(ch) != 1:
        return "?"
    return ch


class Heatmap(Styled):
    """Activations of one layer: characters along x, units along y, one cell each.

    The selected unit is marked and kept in view; a side column shows each
    unit's saturation (the fraction of steps near its low and high end)."""

    DEFAULT_CSS = "Heatmap { height: 1fr; min-height: 3; }"
    GUTTER = 6

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tokens: tuple[str, ...] = ()
        self.kind = colors.TANH
        self.levels: np.ndarray | None = None  # (T, H) colour levels
        self.side: np.ndarray | None = None  # (H, 2)
        self.side_labels = ("low", "high")
        self.unit = 0
        self.cursor: int | None = None  # a highlighted column (the explore screen's character)
        self.unit_offset = 0
        self.col_offset = 0
        self._pal_key: tuple | None = None
        self._run: Runs | None = None  # the run segments of the palette of _pal_key
        self._strips: dict[tuple, Strip] = {}  # rows drawn from this data
        self._values: np.ndarray | None = None  # the values shown
        self._side: list | None = None  # side as Python floats
        self._block_key: tuple | None = None
        self._block: tuple = (0, [], [0])  # the run segments of the rows in view (_visible_runs)

    # -- data
    def show(self, values: np.ndarray | None, tokens: tuple[str, ...], kind: str, side: np.ndarray | None = None,
             side_labels: tuple[str, str] = ("low", "high")) -> None:  # fmt: skip
        """values (T, H) of one signal and layer. The same values again (the screen
        redraws them when only the selected unit moves) change nothing and draw nothing."""
        if self._values is not None and _same(values, self._values) and (tokens, kind, side_labels) == (self.tokens, self.kind, self.side_labels) \
                and (side is None) == (self.side is None) and (side is None or np.array_equal(side, self.side)):  # fmt: skip
            return
        self._values = values  # held, so that the memory of an array shown is not another's while compared
        self.tokens, self.kind, self.side, self.side_labels = tokens, kind, side, side_labels
        if values is None or values.size == 0:
            self.levels = None
        else:
            self.levels = colors.levels(kind, values, colors.scale_of(kind, values))
            self._by_unit = np.ascontiguousarray(self.levels.T)  # (H, T): a row of the heatmap is contiguous
        self._side = None if side is None else side.tolist()
        self._strips.clear()
        self._block_key = None
        self.unit = min(self.unit, max(0, self.units - 1))
        self._keep_in_view()
        self.refresh()

    @property
    def units(self) -> int:
        return 0 if self.levels is None else self.levels.shape[1]

    @property
    def rows(self) -> int:
        return max(1, self.size.height - 1)

    @property
    def cols(self) -> int:
        return max(1, self.size.width - self.GUTTER - (10 if self.side is not None else 0))

    # -- navigation
    def select_unit(self, unit: int) -> None:
        old, offset = self.unit, self.unit_offset
        self.unit = int(np.clip(unit, 0, max(0, self.units - 1)))
        self._keep_in_view()
        if self.unit_offset == offset:  # the rows stay: only the two whose mark moved are drawn again
            self.refresh(*(Region(0, 1 + u - offset, self.size.width, 1) for u in {old, self.unit}))
        else:
            self.refresh()

    def set_cursor(self, t: int | None) -> None:
        self.cursor = t
        self._keep_in_view()
        self.refresh()

    def scroll_cols(self, n: int) -> None:
        self.col_offset = int(np.clip(self.col_offset + n, 0, max(0, len(self.tokens) - self.cols)))
        self.refresh()

    def _keep_in_view(self) -> None:
        if self.unit < self.unit_offset:
            self.unit_offset = self.unit
        elif self.unit >= self.unit_offset + self.rows:
            self.unit_offset = self.unit - self.rows + 1
        self.unit_offset = int(np.clip(self.unit_offset, 0, max(0, self.units - self.rows)))
        if self.cursor is not None:
            if self.cursor < self.col_offset:
                self.col_offset = self.cursor
            elif self.cursor >= self.col_offset + self.cols:
                self.col_offset = self.cursor - self.cols + 1
        self.col_offset = int(np.clip(self.col_offset, 0, max(0, len(self.tokens) - self.cols)))

    def on_resize(self) -> None:
        self._keep_in_view()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.units + 1

    # -- drawing
    # A frame redraws every visible cell, so the cost of a line is the cost of its segments,
    # in Textual's pipeline as much as here: a run of cells of one colour is one segment,
    # and each carries its final style (the widget's own under the cell's, composed once
    # per colour), so no pass over the segments adds it. The runs of a row come from one
    # numpy diff, their segments from a cache per (colour, length), the widget's style is
    # read once per frame (Styled.render_lines), and a row already drawn with the same data,
    # columns, cursor and selection is drawn from its strip. Textual's colour filter
    # (ANSIToTruecolor, which rebuilds every segment of every line drawn) is applied
    # here once per style instead, and left out of this widget's filters.
    # bench/RESULTS.md has the cost.
    def render_line(self, y: int) -> Strip:
        size, look = self.frame_size(), self.look()
        width, base = size.width, look(PLAIN)
        if self.levels is None:
            return fit([Segment("no activations yet" if y == 0 else "", look(DIM))], width, base)
        T, H = self.levels.shape
        c0, c1 = self.col_offset, min(T, self.col_offset + self._cols(width))
        u = self.unit_offset + y - 1
        if y > 0 and u >= H:
            return Strip.blank(width, base)
        key = (u if y else -1, y == 0 or u == self.unit, c0, c1, self.cursor, width, look)
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) > 4 * (H + 1):
                self._strips.clear()
            if y == 0:
                strip = self._header(c0, c1, width, look)
            else:
                u1 = min(H, self.unit_offset + max(1, size.height - 1))  # the rows in view end here
                strip = self._row(u, c0, c1, width, look, self._visible_runs(c0, c1, u1, look))
            self._strips[key] = strip
        return strip

    def _cols(self, width: int) -> int:
        return max(1, width - self.GUTTER - (10 if self.side is not None else 0))

    def _header(self, c0: int, c1: int, width: int, look: "Look") -> Strip:
        dim, base, rev = look(DIM), look(PLAIN), look(REVERSE)
        segs = [Segment(f"{'unit':>{self.GUTTER - 1}} ", dim)]
        for t in range(c0, c1):
            segs.append(Segment(glyph(self.tokens[t]), rev if t == self.cursor else base))
        if self.side is not None:
            segs.append(Segment(f" {self.side_labels[0]:>4} {self.side_labels[1]:>4}", dim))
        return fit(segs, width, base)

    def _visible_runs(self, c0: int, c1: int, u1: int, look: "Look") -> tuple[int, list[Segment], list[int]]:
        """The run segments of the rows in view (units unit_offset..u1, columns c0..c1), found
        for all of them at once: one numpy pass over the block instead of one per row. Returns
        (the first unit, the segments, where each row's segments start and end)."""
        u0 = self.unit_offset
        key = (u0, u1, c0, c1, self.cursor, look)
        if self._block_key != key:
            block = self._by_unit[u0:u1, c0:c1]
            R, n = block.shape
            if n == 0 or R == 0:
                segs, bounds = [], [0] * (R + 1)
            else:
                # a run starts at each column whose colour differs from the last; the cursor's cell is a run of its own
                start = np.ones((R, n), dtype=bool)
                np.not_equal(block[:, 1:], block[:, :-1], out=start[:, 1:])
                cursor = -1 if self.cursor is None else self.cursor - c0
                if 0 <= cursor < n:
                    start[:, cursor : cursor + 2] = True
                first = np.flatnonzero(start)  # row-major: row r's runs lie between r * n and (r + 1) * n
                nxt = np.append(first[1:], R * n)
                cells = np.minimum(nxt, (first // n + 1) * n) - first
                if 0 <= cursor < n:
                    cells[first % n == cursor] = 0  # 0 cells: the cursor's mark
                segs = list(map(self._runs(look).__getitem__, zip(block.ravel()[first].tolist(), cells.tolist())))
                bounds = np.searchsorted(first, np.arange(R + 1) * n).tolist()
            self._block_key, self._block = key, (u0, segs, bounds)
        return self._block

    def _row(self, u: int, c0: int, c1: int, width: int, look: "Look", runs: tuple[int, list[Segment], list[int]]) -> Strip:
        dim, sel, base = look(DIM), look(SELECTED), look(PLAIN)
        mark = "▶" if u == self.unit else " "
        segs = [Segment(f"{mark}{u:>{self.GUTTER - 2}} ", sel if u == self.unit else dim)]
        u0, run_segs, bounds = runs
        segs += run_segs[bounds[u - u0] : bounds[u - u0 + 1]]
        n = c1 - c0
        if self.side is not None:
            lo, hi = self._side[u]
            segs.append(Segment(f" {lo:>4.0%} {hi:>4.0%}", sel if u == self.unit else dim))
        cells = len(segs[0].text) + n + (len(segs[-1].text) if self.side is not None else 0)
        return fit(segs, width, base, cells)

    def _runs(self, look: "Look") -> "Runs":
        """The segment of each (colour level, cells) over this widget's own style."""
        key = (look, self.kind, colors.depth(self.app.console))
        if self._pal_key != key:
            self._pal_key, self._run = key, Runs([look(colors.bg(self.kind, level, key[2])) for level in range(colors.LEVELS)])
        return self._run


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    """The same array or view (b is held, so its memory is no other array's)."""
    return a is b or (
        a is not None and a.__array_interface__ == b.__array_interface__ and a.dtype == b.dtype
    )


# ------------------------------------------------------------ token text


class TokenText(Styled):
    """Text with each token's background coloured by one unit's activation, wrapped
    to the width; the lines around the cursor stay in view.

    Drawn through the line API from strips cached per size and data (one segment a
    token, its style over the widget's own), not through Rich text and Textual's
    content: the activations screen redraws it with every frame."""

    DEFAULT_CSS = "TokenText { height: 1fr; min-height: 2; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tokens: tuple[str, ...] = ()
        self.levels: np.ndarray | None = None  # (T,)
        self.kind = colors.TANH
        self.cursor: int | None = None
        self.dim_before = 0  # tokens shown dim (the prime) when nothing colours them
        self.empty = ""
        self._strips: list[Strip] | None = None
        self._key: tuple | None = None

    def show(
        self, tokens: tuple[str, ...], values: np.ndarray | None, kind: str, cursor: int | None = None, dim_before: int = 0
    ) -> None:
        self.tokens, self.kind, self.cursor, self.dim_before = tokens, kind, cursor, dim_before
        self.levels = None if values is None else colors.levels(kind, values, colors.scale_of(kind, values))
        self._strips = None
        self.refresh()

    def pieces(self, width: int) -> list[list[tuple[str, Style]]]:
        """The wrapped lines, each a list of (text, style), one a token."""
        lines, line, used, cursor_line = [], [], 0, 0
        depth = colors.depth(self.app.console)
        levels = None if self.levels is None else self.levels.tolist()
        for t, tok in enumerate(self.tokens):
            piece = _piece(tok)
            if levels is not None:
                style = colors.bg(self.kind, levels[t], depth)
            else:
                style = DIM if t < self.dim_before else PLAIN
            if t == self.cursor:
                style = style + Style(reverse=True, bold=True)
                cursor_line = len(lines)
            if used + len(piece) > width and used:
                lines.append(line)
                line, used = [], 0
                if t == self.cursor:
                    cursor_line = len(lines)
            line.append((piece, style))
            used += len(piece)
            if tok in ("\n", "<eod>"):
                lines.append(line)
                line, used = [], 0
        if used:
            lines.append(line)
        self._cursor_line = cursor_line
        return lines

    def lines(self, width: int) -> list[Text]:
        return [Text.assemble(*line) for line in self.pieces(width)]

    def render(self) -> Text:  # what is shown with no tokens (the line API draws them)
        return Text(self.empty, style="dim")

    def render_line(self, y: int) -> Strip:
        if not self.tokens:
            return super().render_line(y)
        size, look = self.frame_content_size(), self.look()
        w, h = size.width, size.height
        base, key = look(PLAIN), (w, h, look)
        if self._strips is None or self._key != key:
            lines = self.pieces(max(1, w))
            top = 0
            if len(lines) > h:
                top = min(max(0, self._cursor_line - h // 2), len(lines) - h) if self.cursor is not None else len(lines) - h
            self._strips = [fit([Segment(piece, look(style)) for piece, style in line], w, base) for line in lines[top : top + h]]
            self._key = key
        return self._strips[y] if y < len(self._strips) else Strip.blank(w, base)



@lru_cache(maxsize=4096)
def _piece(tok: str) -> str:
    """The cells that stand for a token in running text."""
    piece = "".join(glyph(ch) if ch in "\n\t" else ch for ch in tok) if tok != "<eod>" else "¶"
    return "".join(ch if ch.isprintable() and cell_len(ch) == 1 else "?" for ch in piece)


def bar(p: float, width: int) -> str:
    """A horizontal bar of p in [0, 1], eighths of a cell."""
    eighths = int(round(max(0.0, min(1.0, p)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


def escape(text: str) -> str:
    """Text for a one-line input: a newline reads \\n, a tab \\t (see unescape)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unescape(text: str) -> str:
    """As typed in a one-line input: \\n is a newline, \\t a tab, \\\\ a backslash."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def fmt_p(p: float) -> str:
    return "  –  " if not math.isfinite(p) else f"{p:5.1%}"
