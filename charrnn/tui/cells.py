"""Line-API drawing shared by the app's widgets: cells styled as Textual would draw
them, once per style instead of once per segment of every line drawn."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.filter import ANSIToTruecolor
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget


class Styled(Widget):
    """A line-API widget that styles its own cells as Textual would draw them: over the
    widget's style, read once a frame, and through the app's colour filter
    (ANSIToTruecolor) once per style, which is then left out of its line filters:
    the filter would otherwise rebuild every segment of every line drawn."""

    _look: "Look | None" = None
    _sizes: "tuple[Size, Size] | None" = None

    def render_lines(self, crop):  # type: ignore[no-untyped-def]
        # Read once a frame, not once a line: the widget's style walks its ancestors,
        # and each read of its size looks its region up in the compositor.
        self._look, self._sizes = Look.of(self), (self.size, self.content_size)
        try:
            return super().render_lines(crop)
        finally:
            self._look = self._sizes = None

    def get_line_filters(self):  # type: ignore[no-untyped-def]
        return [f for f in super().get_line_filters() if not isinstance(f, ANSIToTruecolor)]

    def look(self) -> "Look":
        """This frame's cell styling (outside a frame: as it is now)."""
        return self._look or Look.of(self)

    def frame_size(self) -> "Size":
        """This frame's size (outside a frame: as it is now)."""
        return self._sizes[0] if self._sizes is not None else self.size

    def frame_content_size(self) -> "Size":
        """This frame's content size (outside a frame: as it is now)."""
        return self._sizes[1] if self._sizes is not None else self.content_size


class Runs(dict):
    """(colour level, cells) -> the segment of a run of that many cells of that colour;
    0 cells is the cursor's one-cell mark."""

    def __init__(self, palette: list[Style]):
        super().__init__()
        self.palette = palette

    def __missing__(self, key: tuple[int, int]) -> Segment:
        level, cells = key
        seg = self[key] = Segment(" " * cells if cells else "│", self.palette[level])
        return seg


@dataclass(frozen=True)
class Look:
    """A cell style as a widget draws it: over the widget's own style, then through
    Textual's colour filter (as the app's ANSIToTruecolor would turn it; the same
    where the filter is off) for the widget's background."""

    base: Style
    truecolor: ANSIToTruecolor | None
    background: "RichColor"

    @classmethod
    def of(cls, widget: Widget) -> "Look":
        tc = next((f for f in widget.app.get_line_filters() if isinstance(f, ANSIToTruecolor)), None)
        return cls(widget.rich_style, tc, widget.background_colors[1].rich_color)

    def __call__(self, style: Style) -> Style:
        return _look(self.base, style, self.truecolor, self.background)


@lru_cache(maxsize=4096)
def _look(base: Style, style: Style, truecolor: ANSIToTruecolor | None, background: "RichColor") -> Style:
    s = base + style
    return s if truecolor is None else truecolor.truecolor_style(s, background)


def fit(segs: list[Segment], width: int, base: Style, cells: int | None = None) -> Strip:
    """A strip of exactly `width` cells from segments of one-cell characters (`cells` of them, where known)."""
    n = sum(len(s.text) for s in segs) if cells is None else cells
    if n < width:
        return Strip(segs + [Segment(" " * (width - n), base)], width)
    return Strip(segs, n).crop(0, width) if n > width else Strip(segs, n)


DIM, PLAIN, SELECTED, REVERSE = Style(dim=True), Style(), Style(bold=True, color="bright_white"), Style(reverse=True)
